"""Invoices: our records are the truth. Lines come from rating the ledger; prepaid credit is
spent first (oldest expiry first); what is left is charged to the default card with one
off-session PaymentIntent per invoice."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from billing import gateway
from billing.models import (
    Card,
    CreditGrant,
    CreditSpend,
    Invoice,
    InvoiceLine,
    StripeCustomer,
    Suspension,
)
from billing.rating import charges, running_cost
from portal.models import Organization


def _credit_left(grant: CreditGrant) -> Decimal:
    spent = grant.spends.aggregate(total=Sum("amount"))["total"] or Decimal(0)
    return grant.amount - spent


@transaction.atomic
def invoice_create(*, organization: Organization, start: datetime, end: datetime) -> Invoice:
    """The invoice for [start, end), once: lines from the ledger, credit applied."""
    Organization.objects.select_for_update().get(pk=organization.pk)
    existing = Invoice.objects.filter(organization=organization, period_start=start, period_end=end)
    if existing.exists():
        return existing.get()
    invoice = Invoice.objects.create(organization=organization, period_start=start, period_end=end)
    lines = charges(organization=organization, start=start, end=end)
    InvoiceLine.objects.bulk_create(
        [
            InvoiceLine(
                invoice=invoice, meter=c.meter, item=c.item, quantity=c.quantity, unit=c.unit,
                units=c.units, unit_price=c.unit_price, amount=c.amount,
            )
            for c in lines
        ]
    )  # fmt: skip
    subtotal = sum((c.amount for c in lines), Decimal("0.00"))
    due = subtotal
    now = timezone.now()
    grants = CreditGrant.objects.filter(organization=organization).filter(
        Q(expires_at=None) | Q(expires_at__gt=now)
    )
    for grant in grants.order_by(F("expires_at").asc(nulls_last=True), "pk").select_for_update():
        if due <= 0:
            break
        take = min(_credit_left(grant), due)
        if take > 0:
            CreditSpend.objects.create(grant=grant, invoice=invoice, amount=take)
            due -= take
    invoice.subtotal, invoice.credit_applied, invoice.total_due = subtotal, subtotal - due, due
    if due == 0:
        invoice.state, invoice.paid_at = Invoice.State.PAID, now
    invoice.save()
    return invoice


def invoice_pay(*, invoice: Invoice, now: datetime | None = None) -> Invoice:
    """Charge what is due to the default card. Safe to call again: a paid invoice is left be."""
    now = now or timezone.now()
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if invoice.state == Invoice.State.PAID or invoice.total_due <= 0:
            return invoice
        card = Card.objects.filter(organization_id=invoice.organization_id, is_default=True).first()
        customer = StripeCustomer.objects.filter(organization_id=invoice.organization_id).first()
        invoice.payment_attempts += 1
        if card is None or customer is None:
            invoice.state = Invoice.State.PAYMENT_FAILED
            invoice.last_payment_error = "No card on file."
            _after_attempt(invoice, now)
            invoice.save()
            return invoice
        result = gateway.payment_intent_charge(
            customer_id=customer.stripe_id,
            payment_method_id=card.stripe_payment_method_id,
            amount_cents=int(invoice.total_due * 100),
            currency=invoice.currency,
            invoice_id=invoice.pk,
        )
        invoice.payment_intent_id = result.payment_intent_id or invoice.payment_intent_id
        if result.status == "succeeded":
            invoice.state, invoice.paid_at = Invoice.State.PAID, timezone.now()
            invoice.last_payment_error = ""
        elif result.status in ("processing", "requires_capture"):
            pass  # the webhook settles it
        else:
            invoice.state = Invoice.State.PAYMENT_FAILED
            invoice.last_payment_error = (result.error or result.status)[:300]
        _after_attempt(invoice, now)
        invoice.save()
        return invoice


@transaction.atomic
def invoice_payment_settled(*, payment_intent_id: str, succeeded: bool, error: str = "") -> None:
    """A webhook's word on a payment: paid stays paid; failure only for an unpaid invoice."""
    invoice = (
        Invoice.objects.select_for_update().filter(payment_intent_id=payment_intent_id).first()
    )
    if invoice is None or invoice.state == Invoice.State.PAID:
        return
    if succeeded:
        invoice.state, invoice.paid_at = Invoice.State.PAID, timezone.now()
        _after_attempt(invoice, timezone.now())
    else:
        invoice.state = Invoice.State.PAYMENT_FAILED
        invoice.last_payment_error = error[:300]
    invoice.save()


# A failed payment is tried again after these delays; after the last, new orders are suspended.
RETRY_DELAYS = (timedelta(days=1), timedelta(days=3), timedelta(days=5))


def _after_attempt(invoice: Invoice, now: datetime) -> None:
    """Schedule the next try of a failed payment, suspend after the last, lift on payment."""
    if invoice.state == Invoice.State.PAID:
        invoice.next_attempt_at = None
        Suspension.objects.filter(invoice=invoice, lifted_at=None).update(lifted_at=now)
        return
    tried = invoice.payment_attempts
    if tried <= len(RETRY_DELAYS):
        invoice.next_attempt_at = now + RETRY_DELAYS[tried - 1]
        return
    invoice.next_attempt_at = None
    if not Suspension.objects.filter(organization=invoice.organization_id, lifted_at=None).exists():
        Suspension.objects.create(
            organization_id=invoice.organization_id,
            invoice=invoice,
            reason=f"{invoice} is unpaid after {tried} attempts: {invoice.last_payment_error}",
        )


def invoices_due(*, now: datetime | None = None) -> dict:
    """The billing run: last month's invoices, early invoices past the threshold, and the
    retries that are due. Safe to run at any interval."""
    now = now or timezone.now()
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    counts = {"invoiced": 0, "retried": 0}
    for organization in Organization.objects.filter(usage_events__started_at__lt=now).distinct():
        last = Invoice.objects.filter(organization=organization).order_by("-period_end").first()
        start = last.period_end if last else _first_usage(organization)
        end = None
        if start < month_start:
            end = month_start  # the monthly invoice
        elif (
            running_cost(organization=organization, start=start, end=now)
            >= settings.INVOICE_THRESHOLD
        ):
            end = now.replace(minute=0, second=0, microsecond=0)  # early, past the threshold
        if end is not None and end > start:
            created = invoice_create(organization=organization, start=start, end=end)
            invoice_pay(invoice=created, now=now)
            counts["invoiced"] += 1
    retries = Invoice.objects.filter(
        state=Invoice.State.PAYMENT_FAILED, next_attempt_at__lte=now
    ).values_list("pk", flat=True)
    for pk in retries:
        invoice_pay(invoice=Invoice(pk=pk), now=now)
        counts["retried"] += 1
    return counts


def _first_usage(organization: Organization) -> datetime:
    first = organization.usage_events.order_by("started_at").values_list("started_at", flat=True)[0]
    return first.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
