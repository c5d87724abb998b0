"""The Stripe customer and the card on file.

Stripe calls come first and our rows after, inside one transaction with the organization row
locked: a failure anywhere leaves no card row that Stripe does not also have, and running a step
again (a retried request, a webhook) finds what the first run did and finishes the job."""

import contextlib

from django.core.exceptions import PermissionDenied
from django.db import transaction

from billing import payments
from billing.models import Card, StripeCustomer
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
    stripe_id = payments.customer_create(
        organization_id=organization.pk, name=organization.name, email=email
    )
    return StripeCustomer.objects.create(organization=organization, stripe_id=stripe_id)


def card_setup_start(*, membership: Membership) -> str:
    """A fresh SetupIntent for the card form; returns its client secret. Each attempt gets its
    own, since a declined or failed-authentication intent may be cancelled."""
    require(membership, Permission.MANAGE_BILLING)
    customer = customer_ensure(organization=membership.organization, email=membership.user.email)
    _, client_secret = payments.setup_intent_create(
        customer_id=customer.stripe_id, organization_id=membership.organization_id
    )
    return client_secret


@transaction.atomic
def card_setup_complete(*, organization: Organization, setup_intent_id: str, actor: Actor) -> Card:
    """Save the card a succeeded SetupIntent collected and make it the default, replacing the
    previous default card. Safe to call again for the same intent."""
    _lock(organization)
    customer = StripeCustomer.objects.filter(organization=organization).first()
    result = payments.setup_intent_retrieve(setup_intent_id)
    if customer is None or result.customer_id != customer.stripe_id:
        raise PermissionDenied("This card setup belongs to another customer.")
    if result.status != "succeeded" or not result.payment_method_id:
        raise payments.PaymentError(
            result.error or "The card was not confirmed; nothing was saved. Please try again."
        )
    existing = Card.objects.filter(stripe_payment_method_id=result.payment_method_id).first()
    if existing is not None and existing.is_default:
        return existing
    details = payments.payment_method_retrieve(result.payment_method_id)
    if details.customer_id is None:  # Stripe attaches on confirmation; localstripe does not
        details = payments.payment_method_attach(
            payment_method_id=details.payment_method_id, customer_id=customer.stripe_id
        )
    payments.customer_default_payment_method_set(
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
    with contextlib.suppress(payments.PaymentError, payments.PaymentUnavailable):
        payments.payment_method_detach(payment_method_id)


@transaction.atomic
def card_remove(*, membership: Membership, card: Card, actor: Actor) -> None:
    require(membership, Permission.MANAGE_BILLING)
    organization = _lock(membership.organization)
    if card.organization_id != organization.pk:
        raise PermissionDenied("Not this organization's card.")
    payments.payment_method_detach(card.stripe_payment_method_id)
    card.delete()
    audit_record(
        action=AuditEvent.Action.CARD_REMOVED,
        actor=actor,
        organization=organization,
        target=str(card),
    )


@transaction.atomic
def cards_sync(*, organization: Organization) -> None:
    """Make our default-card flag agree with the customer's default in Stripe now. Reading the
    current state (not the event's) makes stale or reordered events harmless."""
    _lock(organization)
    customer = StripeCustomer.objects.get(organization=organization)
    default = payments.customer_default_payment_method(customer.stripe_id)
    cards = Card.objects.filter(organization=organization)
    cards.exclude(stripe_payment_method_id=default).filter(is_default=True).update(is_default=False)
    if default:
        cards.filter(stripe_payment_method_id=default).update(is_default=True)
