"""Invoices: our records are the truth. Lines come from rating the ledger; prepaid credit is
spent first (oldest expiry first); what is left is charged to the default card off-session, one
PaymentIntent per payment attempt (its own idempotency key), retried on a schedule."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from billing import payments
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
from billing.states import invoice_transition
from portal.models import Organization

logger = logging.getLogger(__name__)


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
                invoice=invoice,
                meter=c.meter,
                item=c.item,
                quantity=c.quantity,
                unit=c.unit,
                units=c.units,
                unit_price=c.unit_price,
                amount=c.amount,
            )
            for c in lines
        ]
    )
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
    if due == 0:  # the credit paid it all
        invoice_transition(invoice=invoice, to=Invoice.State.PAID, actor="credit")
        invoice.paid_at = now
    invoice.save()
    return invoice


def invoice_pay(*, invoice: Invoice, now: datetime | None = None) -> Invoice:
    """Charge what is due to the default card. Safe to call again: a paid invoice is left be.

    Each attempt has its own number and Stripe idempotency key; the number is saved with the
    attempt's result, in the transaction that holds the invoice's row lock during the call. A
    worker that dies mid-call, or a call whose outcome is unknown (PaymentUnavailable, raised
    after noting when to try again), leaves the number unsaved: the next try is the same attempt
    with the same key, and Stripe answers what that attempt did rather than charging twice."""
    now = now or timezone.now()
    try:
        return _attempt(invoice.pk, now)
    except payments.PaymentUnavailable as exc:
        _attempt_unresolved(invoice.pk, now, str(exc))
        raise


@transaction.atomic
def _attempt(invoice_id: int, now: datetime) -> Invoice:
    invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
    if invoice.state == Invoice.State.PAID or invoice.total_due <= 0:
        return invoice
    card = Card.objects.filter(organization_id=invoice.organization_id, is_default=True).first()
    customer = StripeCustomer.objects.filter(organization_id=invoice.organization_id).first()
    attempt = invoice.payment_attempts + 1
    if card is None or customer is None:
        result = payments.PaymentResult("", "failed", "No card on file.")
    else:
        result = payments.payment_intent_charge(
            customer_id=customer.stripe_id,
            payment_method_id=card.stripe_payment_method_id,
            amount_cents=int(invoice.total_due * 100),
            currency=invoice.currency,
            invoice_id=invoice.pk,
            attempt=attempt,
        )
    invoice.payment_attempts = attempt
    invoice.payment_intent_id = result.payment_intent_id or invoice.payment_intent_id
    if result.status == "succeeded":
        invoice_transition(invoice=invoice, to=Invoice.State.PAID, actor="billing")
        invoice.paid_at = timezone.now()
        invoice.last_payment_error = ""
    elif result.status in ("processing", "requires_capture"):
        pass  # the webhook settles it
    else:
        invoice_transition(invoice=invoice, to=Invoice.State.PAYMENT_FAILED, actor="billing")
        invoice.last_payment_error = (result.error or result.status)[:300]
        if result.status == "refused":
            logger.warning(
                "billing: Stripe refused attempt %s of invoice %s (organization %s): %s",
                attempt,
                invoice.pk,
                invoice.organization_id,
                result.error,
            )
    _after_attempt(invoice, now)
    invoice.save()
    return invoice


# An attempt whose outcome is unknown (Stripe unreachable, or failing on its side) is tried
# again after this, as the same attempt; it does not count towards suspension.
UNRESOLVED_RETRY = timedelta(hours=1)


@transaction.atomic
def _attempt_unresolved(invoice_id: int, now: datetime, error: str) -> None:
    invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
    if invoice.state == Invoice.State.PAID:
        return
    invoice.next_attempt_at = now + UNRESOLVED_RETRY
    invoice.last_payment_error = error[:300]
    invoice.save(update_fields=["next_attempt_at", "last_payment_error"])


@transaction.atomic
def invoice_payment_settled(*, payment_intent_id: str, succeeded: bool, error: str = "") -> None:
    """A webhook's word on a payment: paid stays paid; failure only for an unpaid invoice."""
    invoice = (
        Invoice.objects.select_for_update().filter(payment_intent_id=payment_intent_id).first()
    )
    if invoice is None or invoice.state == Invoice.State.PAID:
        return
    if succeeded:
        invoice_transition(invoice=invoice, to=Invoice.State.PAID, actor="stripe webhook")
        invoice.paid_at = timezone.now()
        _after_attempt(invoice, timezone.now())
    else:
        invoice_transition(invoice=invoice, to=Invoice.State.PAYMENT_FAILED, actor="stripe webhook")
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
    retries that are due. Safe to run at any interval. One organization's failure (Stripe
    down, a refused charge, a bug) is logged and recorded on its invoice, and the run goes on
    to the next."""
    now = now or timezone.now()
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    counts = {"invoiced": 0, "retried": 0, "failed": 0}
    organizations = Organization.objects.filter(usage_events__started_at__lt=now).distinct()
    for organization in organizations.order_by("pk"):
        invoice = None
        try:
            invoice = _invoice_due(organization, now, month_start)
            if invoice is not None:
                counts["invoiced"] += 1
                invoice_pay(invoice=invoice, now=now)
        except Exception as exc:  # one organization never stops the run
            invoice_id = invoice.pk if invoice is not None else None
            _run_failed(organization_id=organization.pk, invoice_id=invoice_id, exc=exc, now=now)
            counts["failed"] += 1
    due = Q(next_attempt_at__lte=now)
    # Open without a PaymentIntent: Stripe has not answered yet (unreachable, or the worker
    # died before or during the call). Open with one: processing, the webhook settles it.
    unanswered = Q(state=Invoice.State.OPEN, payment_intent_id="", total_due__gt=0) & (
        due | Q(next_attempt_at=None)
    )
    retries = (
        Invoice.objects.filter(Q(state=Invoice.State.PAYMENT_FAILED) & due | unanswered)
        .order_by("pk")
        .values_list("pk", "organization_id")
    )
    for pk, organization_id in retries:
        try:
            invoice_pay(invoice=Invoice(pk=pk), now=now)
            counts["retried"] += 1
        except Exception as exc:
            _run_failed(organization_id=organization_id, invoice_id=pk, exc=exc, now=now)
            counts["failed"] += 1
    return counts


def _invoice_due(
    organization: Organization, now: datetime, month_start: datetime
) -> Invoice | None:
    """The organization's invoice due now, created once; None when none is due."""
    last = Invoice.objects.filter(organization=organization).order_by("-period_end").first()
    start = last.period_end if last else _first_usage(organization)
    end = None
    if start < month_start:
        end = month_start  # the monthly invoice
    elif running_cost(organization=organization, start=start, end=now) >= (
        settings.INVOICE_THRESHOLD
    ):
        end = now.replace(minute=0, second=0, microsecond=0)  # early, past the threshold
    if end is None or end <= start:
        return None
    return invoice_create(organization=organization, start=start, end=end)


def _run_failed(*, organization_id: int, invoice_id: int | None, exc: Exception, now) -> None:
    """Log a failure of the billing run (the error's type and message: no request, no keys)
    and, where an invoice exists, note it there and try again later."""
    error = f"{type(exc).__name__}: {exc}"[:300]
    logger.error(
        "billing run: organization %s, invoice %s failed: %s", organization_id, invoice_id, error
    )
    if invoice_id is not None and not isinstance(exc, payments.PaymentUnavailable):
        try:  # PaymentUnavailable was noted by invoice_pay itself
            _attempt_unresolved(invoice_id, now, "The payment will be tried again.")
        except Exception:  # the database itself may be what failed
            logger.error("billing run: could not note the failure on invoice %s", invoice_id)


def _first_usage(organization: Organization) -> datetime:
    first = organization.usage_events.order_by("started_at").values_list("started_at", flat=True)[0]
    return first.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
