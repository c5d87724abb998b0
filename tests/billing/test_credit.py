"""Prepaid credit: operators grant it in the console; the organization sees its balance."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from billing import selectors
from billing.models import CreditGrant
from billing.services import credits
from portal.models import AuditEvent
from portal.services.audit import Actor
from tests.portal.factories import UserFactory, member, organization_of

pytestmark = pytest.mark.django_db


def test_given_an_operator_when_granting_credit_in_the_console_then_the_org_sees_the_balance(
    client,
):
    operator = UserFactory(is_staff=True, is_superuser=True)
    customer = member()
    organization = organization_of(customer)
    client.force_login(operator)
    response = client.post(
        "/admin/billing/creditgrant/add/",
        {"organization": organization.pk, "amount": "250.00", "expires_at_0": "", "note": "pilot"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    grant = CreditGrant.objects.get()
    assert (grant.amount, grant.granted_by, grant.note) == (Decimal("250.00"), operator, "pilot")
    event = AuditEvent.objects.get(action=AuditEvent.Action.CREDIT_GRANTED)
    assert (event.organization, event.via) == (organization, "admin")

    client.force_login(customer)
    assert "$250.00" in client.get("/billing/").content.decode()


def test_given_expired_and_live_grants_then_only_live_credit_counts():
    organization = organization_of(member())
    operator = Actor(user=UserFactory(is_staff=True))
    credits.credit_grant(
        organization=organization, amount=Decimal("10"), expires_at=None, note="", actor=operator
    )
    soon = timezone.now() + timedelta(days=1)
    credits.credit_grant(
        organization=organization, amount=Decimal("5.50"), expires_at=soon, note="", actor=operator
    )
    CreditGrant.objects.create(
        organization=organization, amount=Decimal("99"), expires_at=timezone.now()
    )
    assert selectors.credit_balance(organization=organization) == Decimal("15.50")
    assert selectors.organization_can_pay(organization=organization)


def test_given_a_customer_or_a_bad_amount_then_no_grant():
    organization = organization_of(member())
    with pytest.raises(PermissionDenied):
        credits.credit_grant(
            organization=organization,
            amount=Decimal("10"),
            expires_at=None,
            note="",
            actor=Actor(user=UserFactory()),
        )
    with pytest.raises(ValidationError):
        credits.credit_grant(
            organization=organization,
            amount=Decimal("-1"),
            expires_at=None,
            note="",
            actor=Actor(user=UserFactory(is_staff=True)),
        )
    assert not CreditGrant.objects.exists()
