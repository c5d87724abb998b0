"""Cards on file through Stripe (localstripe): saved, replaced, removed; declines leave nothing."""

import pytest
import stripe
from django.core.exceptions import PermissionDenied

from billing import payments, selectors
from billing.models import Card, StripeCustomer
from billing.services import cards
from portal.models import AuditEvent, Membership
from portal.services.audit import Actor
from tests.billing import cardholder
from tests.portal.factories import member

pytestmark = pytest.mark.django_db(transaction=True)


def test_given_an_organization_then_one_stripe_customer_is_created_and_reused():
    membership = member().memberships.get()
    first = cards.customer_ensure(organization=membership.organization, email="a@example.com")
    again = cards.customer_ensure(organization=membership.organization, email="a@example.com")
    assert first == again
    assert StripeCustomer.objects.count() == 1
    assert cardholder.customer(first.stripe_id).metadata["organization_id"] == str(
        membership.organization_id
    )


def test_given_a_confirmed_card_then_it_is_attached_made_default_and_shown(client):
    membership = member().memberships.get()
    card = cardholder.save_card(membership)
    assert (card.brand, card.last4, card.exp_month, card.exp_year) == ("visa", "4242", 12, 2031)
    assert card.is_default
    customer = membership.organization.stripe_customer.stripe_id
    assert cardholder.payment_method(card.stripe_payment_method_id).customer == customer
    default = cardholder.customer(customer).invoice_settings.default_payment_method
    assert default == card.stripe_payment_method_id
    client.force_login(membership.user)
    page = client.get("/billing/").content.decode()
    assert "4242" in page and "12/2031" in page
    assert AuditEvent.objects.filter(action=AuditEvent.Action.CARD_ADDED).count() == 1


def test_given_the_same_setup_completed_twice_then_one_card(client):
    membership = member().memberships.get()
    secret = cards.card_setup_start(membership=membership)
    intent = cardholder.confirm(secret)
    for _ in range(2):
        cards.card_setup_complete(
            organization=membership.organization, setup_intent_id=intent, actor=Actor(user=None)
        )
    assert Card.objects.count() == 1


def test_given_a_second_card_then_it_replaces_the_first_which_is_detached():
    membership = member().memberships.get()
    old = cardholder.save_card(membership)
    new = cardholder.save_card(membership, "5555555555554444")
    assert list(selectors.card_list(organization=membership.organization)) == [new]
    assert cardholder.payment_method(old.stripe_payment_method_id).customer is None


def test_given_a_declined_card_then_no_card_is_saved_and_the_reason_is_given():
    membership = member().memberships.get()
    secret = cards.card_setup_start(membership=membership)
    with pytest.raises(stripe.CardError):
        cardholder.confirm(secret, cardholder.DECLINED)
    with pytest.raises(payments.PaymentError, match="nothing was saved"):
        cards.card_setup_complete(
            organization=membership.organization,
            setup_intent_id=cardholder.setup_intent_id(secret),
            actor=Actor(user=membership.user),
        )
    assert not Card.objects.exists()
    assert not selectors.organization_can_pay(organization=membership.organization)


def test_given_another_organizations_setup_intent_then_refused():
    mine, theirs = member().memberships.get(), member().memberships.get()
    secret = cards.card_setup_start(membership=theirs)
    intent = cardholder.confirm(secret)
    with pytest.raises(PermissionDenied):
        cards.card_setup_complete(
            organization=mine.organization, setup_intent_id=intent, actor=Actor(user=mine.user)
        )
    cards.customer_ensure(organization=mine.organization, email="x@example.com")
    with pytest.raises(PermissionDenied):
        cards.card_setup_complete(
            organization=mine.organization, setup_intent_id=intent, actor=Actor(user=mine.user)
        )
    assert not Card.objects.exists()


def test_given_a_card_when_removed_then_detached_in_stripe_and_gone_here(client):
    membership = member().memberships.get()
    card = cardholder.save_card(membership)
    client.force_login(membership.user)
    client.post(f"/billing/cards/{card.pk}/remove/")
    assert not Card.objects.exists()
    assert cardholder.payment_method(card.stripe_payment_method_id).customer is None
    assert AuditEvent.objects.filter(action=AuditEvent.Action.CARD_REMOVED).count() == 1


def test_given_stripe_unreachable_when_starting_card_setup_then_a_clear_message(client, settings):
    membership = member().memberships.get()
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"
    client.force_login(membership.user)
    response = client.get("/billing/card/", follow=True)
    assert "The payment service is unreachable" in response.content.decode()
    assert not StripeCustomer.objects.exists()


def test_given_a_member_role_then_card_pages_are_forbidden(client):
    client.force_login(member(role=Membership.Role.MEMBER))
    assert client.get("/billing/").status_code == 403
    assert client.get("/billing/card/").status_code == 403
