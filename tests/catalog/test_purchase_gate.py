"""Ordering anything paid needs a verified email and a card or prepaid credit."""

from decimal import Decimal

import pytest

from billing.models import CreditGrant
from catalog.selectors.storefront import purchase_blockers
from portal.models import Membership
from tests.portal.factories import member

pytestmark = pytest.mark.django_db


def test_given_a_fresh_signup_then_email_and_payment_block_ordering(client):
    user = member()
    membership = user.memberships.get()
    assert purchase_blockers(user=user, membership=membership) == [
        "Verify your email address.",
        "Add a card or get prepaid credit.",
    ]
    client.force_login(user)
    assert "Before you can order paid products" in client.get("/dashboard/").content.decode()


def test_given_a_verified_email_and_credit_then_nothing_blocks(client):
    user = member(verified=True)
    membership = user.memberships.get()
    CreditGrant.objects.create(organization=membership.organization, amount=Decimal("20"))
    assert purchase_blockers(user=user, membership=membership) == []
    client.force_login(user)
    assert "Ready to order" in client.get("/dashboard/").content.decode()


def test_given_the_billing_role_then_it_cannot_order_and_lands_on_billing(client):
    user = member(role=Membership.Role.BILLING, verified=True)
    membership = user.memberships.get()
    assert "Your role in this organization cannot order." in purchase_blockers(
        user=user, membership=membership
    )
    client.force_login(user)
    assert client.get("/dashboard/")["Location"] == "/billing/"
