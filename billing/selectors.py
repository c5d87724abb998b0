"""Billing's read side: the means of payment, invoices, the operators' revenue figures and
token usage from the ledger. Each read runs a fixed number of queries whatever the number of
invoices, lines or organizations.

Tenant reads take the organization and find nothing outside it: another organization's card or
invoice is a 404 by construction, not by a filter a view must remember."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.db.models import Prefetch, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.http import Http404
from django.utils import timezone

from billing.models import (
    Card,
    CreditGrant,
    CreditSpend,
    Invoice,
    InvoiceLine,
    Suspension,
    UsageEvent,
)
from billing.rating import price_for
from portal.models import Organization

OUTSTANDING = (Invoice.State.OPEN, Invoice.State.PAYMENT_FAILED)
TOKEN_METERS = (UsageEvent.Meter.INPUT_TOKENS, UsageEvent.Meter.OUTPUT_TOKENS)


def product_label(meter: str, item: str) -> str:
    meters = dict(UsageEvent.Meter.choices)
    return f"{item} · {meters.get(meter, meter)}"


# --- tenant: cards, credit, suspension ----------------------------------------------------------


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


# --- tenant: invoices ---------------------------------------------------------------------------


def invoice_list(*, organization: Organization) -> QuerySet[Invoice]:
    return Invoice.objects.filter(organization=organization)


def invoice_list_with_lines(*, organization: Organization) -> QuerySet[Invoice]:
    """Invoices and their lines in two queries, for the organization-wide export."""
    return invoice_list(organization=organization).prefetch_related(
        Prefetch("lines", queryset=InvoiceLine.objects.order_by("pk"))
    )


def invoice_get(*, organization: Organization, invoice_id: int) -> Invoice:
    """One invoice of the organization with its lines and credit spends; 404 for any other."""
    try:
        return (
            invoice_list(organization=organization)
            .select_related("organization")
            .prefetch_related(
                Prefetch("lines", queryset=InvoiceLine.objects.order_by("pk")),
                Prefetch("credit_spends", queryset=CreditSpend.objects.order_by("pk")),
            )
            .get(pk=invoice_id)
        )
    except Invoice.DoesNotExist:
        raise Http404("No such invoice.") from None


# --- tenant: token usage from the ledger --------------------------------------------------------


@dataclass(frozen=True)
class TokenTotal:
    """Tokens one source (an inference key, "key:<prefix>") used of one model on one side."""

    source: str
    model: str
    side: str  # "input" or "output"
    tokens: Decimal
    cost: Decimal  # at today's rate, unrounded


@dataclass(frozen=True)
class TokenUsage:
    totals: list[TokenTotal]
    by_day: list[tuple[date, str, Decimal]]  # (day, model, input and output tokens)


def token_usage(*, organization_id: int, since: datetime) -> TokenUsage:
    """The organization's input and output tokens that started at or after `since`: per source,
    model and side with their cost, and per day (in TIME_ZONE) and model. Two queries, and the
    rate of each model."""
    events = UsageEvent.objects.filter(
        organization_id=organization_id, meter__in=TOKEN_METERS, started_at__gte=since
    )
    totals = []
    for source, item, meter, quantity in (
        events.values_list("source", "item", "meter").annotate(q=Sum("quantity")).order_by()
    ):
        price = price_for(meter, item)
        side = "input" if meter == UsageEvent.Meter.INPUT_TOKENS else "output"
        cost = quantity / price.unit_quantity * price.price
        totals.append(TokenTotal(source, item, side, quantity, cost))
    by_day = list(
        events.annotate(day=TruncDate("started_at"))
        .values_list("day", "item")
        .annotate(q=Sum("quantity"))
        .order_by("day")
    )
    return TokenUsage(totals=totals, by_day=by_day)


# --- operator: revenue, outstanding invoices, credit balances -----------------------------------


@dataclass(frozen=True)
class RevenueRow:
    day: date
    meter: str
    item: str
    amount: Decimal

    @property
    def product(self) -> str:
        return product_label(self.meter, self.item)


def revenue_by_product_and_day(*, first: date, last: date) -> list[RevenueRow]:
    """Revenue is what paid invoices billed: the amounts of their lines, on the day (in
    TIME_ZONE) the invoice was paid, per product (meter and item), for the days `first` to
    `last`. It is gross of prepaid credit, since credit an invoice spent is revenue too. Rated
    usage not yet invoiced is not revenue yet, and an open or failed invoice is outstanding."""
    rows = (
        InvoiceLine.objects.filter(
            invoice__state=Invoice.State.PAID,
        )
        .annotate(day=TruncDate("invoice__paid_at"))
        .filter(day__gte=first, day__lte=last)
        .values("day", "meter", "item")
        .annotate(amount=Sum("amount"))
        .order_by("day", "meter", "item")
    )
    return [RevenueRow(r["day"], r["meter"], r["item"], r["amount"]) for r in rows]


def outstanding_invoices() -> QuerySet[Invoice]:
    return (
        Invoice.objects.filter(state__in=OUTSTANDING)
        .select_related("organization")
        .order_by("period_start", "pk")
    )


@dataclass(frozen=True)
class CreditBalance:
    organization_id: int
    organization: str
    granted: Decimal
    spent: Decimal

    @property
    def balance(self) -> Decimal:
        return self.granted - self.spent


def credit_balances(*, now: datetime | None = None) -> list[CreditBalance]:
    """Per organization with unexpired grants: granted minus spent, as credit_balance counts
    it. Two grouped queries (summing grants across a join to their spends would count each
    grant once per spend)."""
    now = now or timezone.now()
    live = CreditGrant.objects.filter(Q(expires_at=None) | Q(expires_at__gt=now))
    granted = (
        live.values("organization_id", "organization__name")
        .annotate(total=Sum("amount"))
        .order_by("organization__name", "organization_id")
    )
    spent = dict(
        CreditSpend.objects.filter(grant__in=live)
        .values("grant__organization_id")
        .annotate(total=Sum("amount"))
        .order_by()
        .values_list("grant__organization_id", "total")
    )
    return [
        CreditBalance(
            organization_id=g["organization_id"],
            organization=g["organization__name"],
            granted=g["total"],
            spent=spent.get(g["organization_id"], Decimal("0.00")),
        )
        for g in granted
    ]
