"""The write path of billing: customers, cards, credit and Stripe webhooks.

Stripe calls come first and our rows after, inside one transaction with the organization row
locked: a failure anywhere leaves no card row that Stripe does not also have, and running a step
again (a retried request, a webhook) finds what the first run did and finishes the job."""

import contextlib
from datetime import datetime
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from billing import gateway
from billing.invoicing import invoice_payment_settled
from billing.models import Card, CreditGrant, StripeCustomer, WebhookEvent
from portal.models import AuditEvent, Membership, Organization
from portal.permissions import Permission, require
from portal.services.audit import Actor, audit_record


def _lock(organization: Organization) -> Organization:
    return Organization.objects.select_for_update().get(pk=organization.pk)


@transaction.atomic
def customer_ensure(*, organization: Organization, email: str) -> StripeCustomer:
    """The organization's Stripe Customer, created once (row lock here, idempotency key there)."""
    _lock(organization)
    existing = StripeCustomer.objects.filter(organization=organization).first()
    if existing is not None:
        return existing
    stripe_id = gateway.customer_create(
        organization_id=organization.pk, name=organization.name, email=email
    )
    return StripeCustomer.objects.create(organization=organization, stripe_id=stripe_id)


def card_setup_start(*, membership: Membership) -> str:
    """A fresh SetupIntent for the card form; returns its client secret. Each attempt gets its
    own, since a declined or failed-authentication intent may be cancelled."""
    require(membership, Permission.MANAGE_BILLING)
    customer = customer_ensure(organization=membership.organization, email=membership.user.email)
    _, client_secret = gateway.setup_intent_create(
        customer_id=customer.stripe_id, organization_id=membership.organization_id
    )
    return client_secret


@transaction.atomic
def card_setup_complete(*, organization: Organization, setup_intent_id: str, actor: Actor) -> Card:
    """Save the card a succeeded SetupIntent collected and make it the default, replacing the
    previous default card. Safe to call again for the same intent."""
    _lock(organization)
    customer = StripeCustomer.objects.filter(organization=organization).first()
    result = gateway.setup_intent_retrieve(setup_intent_id)
    if customer is None or result.customer_id != customer.stripe_id:
        raise PermissionDenied("This card setup belongs to another customer.")
    if result.status != "succeeded" or not result.payment_method_id:
        raise gateway.PaymentError(
            result.error or "The card was not confirmed; nothing was saved. Please try again."
        )
    existing = Card.objects.filter(stripe_payment_method_id=result.payment_method_id).first()
    if existing is not None and existing.is_default:
        return existing
    details = gateway.payment_method_retrieve(result.payment_method_id)
    if details.customer_id is None:  # Stripe attaches on confirmation; localstripe does not
        details = gateway.payment_method_attach(
            payment_method_id=details.payment_method_id, customer_id=customer.stripe_id
        )
    gateway.customer_default_payment_method_set(
        customer_id=customer.stripe_id, payment_method_id=details.payment_method_id
    )
    others = Card.objects.filter(organization=organization).exclude(
        stripe_payment_method_id=details.payment_method_id
    )
    replaced = list(others)
    others.delete()
    card, _ = Card.objects.update_or_create(
        stripe_payment_method_id=details.payment_method_id,
        defaults={
            "organization": organization,
            "brand": details.brand,
            "last4": details.last4,
            "exp_month": details.exp_month,
            "exp_year": details.exp_year,
            "is_default": True,
        },
    )
    for old in replaced:
        transaction.on_commit(lambda pm=old.stripe_payment_method_id: _detach_quietly(pm))
    audit_record(
        action=AuditEvent.Action.CARD_ADDED,
        actor=actor,
        organization=organization,
        target=str(card),
        detail={"replaced": [str(c) for c in replaced]},
    )
    return card


def _detach_quietly(payment_method_id: str) -> None:
    """Detach a replaced card after commit; if Stripe is down the card just stays attached
    there unused (it is no longer the default), which the customer cannot be charged through."""
    with contextlib.suppress(gateway.PaymentError, gateway.PaymentUnavailable):
        gateway.payment_method_detach(payment_method_id)


@transaction.atomic
def card_remove(*, membership: Membership, card: Card, actor: Actor) -> None:
    require(membership, Permission.MANAGE_BILLING)
    organization = _lock(membership.organization)
    if card.organization_id != organization.pk:
        raise PermissionDenied("Not this organization's card.")
    gateway.payment_method_detach(card.stripe_payment_method_id)
    card.delete()
    audit_record(
        action=AuditEvent.Action.CARD_REMOVED,
        actor=actor,
        organization=organization,
        target=str(card),
    )


@transaction.atomic
def credit_grant(
    *,
    organization: Organization,
    amount: Decimal,
    expires_at: datetime | None,
    note: str,
    actor: Actor,
) -> CreditGrant:
    if actor.user is None or not actor.user.is_staff:
        raise PermissionDenied("Only operators grant credit.")
    if amount <= 0:
        raise ValidationError({"amount": "Credit must be a positive amount."})
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "The expiry must be in the future."})
    grant = CreditGrant.objects.create(
        organization=organization,
        amount=amount,
        expires_at=expires_at,
        note=note[:200],
        granted_by=actor.user,
    )
    audit_record(
        action=AuditEvent.Action.CREDIT_GRANTED,
        actor=actor,
        organization=organization,
        target=f"{amount} {grant.currency}",
        detail={"note": note, "expires_at": expires_at.isoformat() if expires_at else None},
    )
    return grant


# --- webhooks ------------------------------------------------------------------------------------


def purchase_authorize(*, organization: Organization, amount: Decimal, key: str) -> str:
    """May the organization start spending `amount` (an hour of what it orders)? Prepaid credit
    that covers it is enough; otherwise the default card must accept a hold for it, released at
    once. Returns how it was authorized; raises gateway.PaymentError (a decline: the message is
    for the customer) or gateway.PaymentUnavailable (try again)."""
    from billing.selectors import card_default, credit_balance

    if credit_balance(organization=organization) >= amount:
        return "covered by prepaid credit"
    card = card_default(organization=organization)
    customer = StripeCustomer.objects.filter(organization=organization).first()
    if card is None or customer is None:
        raise gateway.PaymentError("Add a card or get prepaid credit to order.")
    gateway.payment_authorize(
        customer_id=customer.stripe_id, payment_method_id=card.stripe_payment_method_id,
        amount_cents=max(int(amount * 100), 50), currency="usd", key=key,
    )  # fmt: skip
    return f"{card.brand} ending {card.last4} authorized for ${amount}"


def webhook_receive(*, payload: bytes, signature: str) -> tuple[WebhookEvent, bool]:
    """Verify and store an event once; (event, is_new). Processing is queued on commit."""
    from billing.tasks import webhook_process

    event = gateway.webhook_event_construct(payload=payload, signature=signature)
    with transaction.atomic():
        stored, created = WebhookEvent.objects.get_or_create(
            stripe_event_id=event["id"], defaults={"type": event["type"], "payload": event}
        )
        if created:
            transaction.on_commit(lambda: webhook_process.delay(stored.pk))
    return stored, created


def _organization_for_customer(customer_id: str | None) -> Organization | None:
    found = StripeCustomer.objects.select_related("organization").filter(stripe_id=customer_id)
    customer = found.first()
    return customer.organization if customer else None


@transaction.atomic
def cards_sync(*, organization: Organization) -> None:
    """Make our default-card flag agree with the customer's default in Stripe now. Reading the
    current state (not the event's) makes stale or reordered events harmless."""
    _lock(organization)
    customer = StripeCustomer.objects.get(organization=organization)
    default = gateway.customer_default_payment_method(customer.stripe_id)
    cards = Card.objects.filter(organization=organization)
    cards.exclude(stripe_payment_method_id=default).filter(is_default=True).update(is_default=False)
    if default:
        cards.filter(stripe_payment_method_id=default).update(is_default=True)


def webhook_process(*, event_id: int) -> WebhookEvent:
    with transaction.atomic():
        event = WebhookEvent.objects.select_for_update().get(pk=event_id)
        if event.processed_at is not None:
            return event
        data = event.payload.get("data", {}).get("object", {})
        if event.type in ("customer.updated", "customer.created"):
            organization = _organization_for_customer(data.get("id"))
            if organization is not None:
                cards_sync(organization=organization)
        elif event.type in ("payment_intent.succeeded", "payment_intent.payment_failed"):
            error = (data.get("last_payment_error") or {}).get("message", "")
            invoice_payment_settled(
                payment_intent_id=data.get("id", ""),
                succeeded=event.type == "payment_intent.succeeded",
                error=error,
            )
        event.processed_at = timezone.now()
        event.save(update_fields=["processed_at"])
    return event
