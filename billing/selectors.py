"""Reads of an organization's means of payment."""

from decimal import Decimal

from django.db.models import Q, QuerySet, Sum
from django.http import Http404
from django.utils import timezone

from billing.models import Card, CreditGrant, CreditSpend, Suspension
from portal.models import Organization


def card_list(*, organization: Organization) -> QuerySet[Card]:
    return Card.objects.filter(organization=organization)


def card_get(*, organization: Organization, card_id: int) -> Card:
    try:
        return card_list(organization=organization).get(pk=card_id)
    except Card.DoesNotExist:
        raise Http404("No such card.") from None


def card_default(*, organization: Organization) -> Card | None:
    return card_list(organization=organization).filter(is_default=True).first()


def credit_grant_list(*, organization: Organization) -> QuerySet[CreditGrant]:
    return CreditGrant.objects.filter(organization=organization)


def credit_balance(*, organization: Organization) -> Decimal:
    """Unexpired prepaid credit not yet spent on invoices."""
    live = credit_grant_list(organization=organization).filter(
        Q(expires_at=None) | Q(expires_at__gt=timezone.now())
    )
    granted = live.aggregate(total=Sum("amount"))["total"] or Decimal("0.00")
    spent = CreditSpend.objects.filter(grant__in=live).aggregate(total=Sum("amount"))["total"]
    return granted - (spent or Decimal("0.00"))


def organization_can_pay(*, organization: Organization) -> bool:
    return card_default(organization=organization) is not None or (
        credit_balance(organization=organization) > 0
    )


def suspension_open(*, organization: Organization):
    return Suspension.objects.filter(organization=organization, lifted_at=None).first()
