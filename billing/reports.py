"""Reads behind the invoice pages and the operator's revenue report. Each runs a fixed number of
queries whatever the number of invoices, lines or organizations.

Tenant reads take the organization and find nothing outside it: another organization's invoice
is a 404 by construction, not by a filter a view must remember."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Prefetch, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.http import Http404
from django.utils import timezone

from billing.models import CreditGrant, CreditSpend, Invoice, InvoiceLine, UsageEvent
from portal.models import Organization

# Who issues the invoices; settings.BILLING_SELLER (same keys) overrides it.
DEFAULT_SELLER = {"name": "GPU Storefront", "address": "", "email": "billing@example.com"}

# The lines' CSV columns, in this order, for one invoice and for all of an organization's
# invoices alike, so one reader takes both files.
CSV_COLUMNS = [
    "invoice",
    "period_start",
    "period_end",
    "state",
    "currency",
    "meter",
    "item",
    "quantity",
    "units",
    "unit",
    "unit_price",
    "amount",
]

OUTSTANDING = (Invoice.State.OPEN, Invoice.State.PAYMENT_FAILED)


def seller() -> dict[str, str]:
    return {**DEFAULT_SELLER, **getattr(settings, "BILLING_SELLER", {})}


def plain(value: Decimal, places: int = 0) -> str:
    """A stored decimal without its trailing zeros (2.000000 -> 2), at least `places` places."""
    text = f"{value.normalize():f}"
    whole, _, fraction = text.partition(".")
    fraction = fraction.ljust(places, "0")
    return f"{whole}.{fraction}" if fraction else whole


def product_label(meter: str, item: str) -> str:
    meters = dict(UsageEvent.Meter.choices)
    return f"{item} · {meters.get(meter, meter)}"


# --- tenant: an organization's invoices -------------------------------------------------------


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


@dataclass(frozen=True)
class LineView:
    """An invoice line as the printed invoice shows it."""

    product: str
    units: str
    unit: str
    unit_price: str
    amount: Decimal


def invoice_line_views(invoice: Invoice) -> list[LineView]:
    """The lines of an invoice fetched by invoice_get (prefetched: no query)."""
    return [
        LineView(
            product=product_label(line.meter, line.item),
            units=plain(line.units),
            unit=line.unit,
            unit_price=plain(line.unit_price, places=2),
            amount=line.amount,
        )
        for line in invoice.lines.all()
    ]


def invoice_payment_reference(invoice: Invoice) -> str:
    """How the invoice was (or is to be) paid, in the customer's words. Reads prefetched
    credit spends."""
    parts = []
    if invoice.payment_intent_id:
        parts.append(f"Card payment {invoice.payment_intent_id}")
    spends = list(invoice.credit_spends.all())
    if spends:
        grants = ", ".join(f"#{s.grant_id}" for s in spends)
        parts.append(f"Prepaid credit (grant {grants})")
    return "; ".join(parts) or "—"


def invoice_csv(invoices: Iterable[Invoice]) -> str:
    """The lines of `invoices` as CSV text: a header row, then one row per line. Amounts are
    the stored decimals, exact."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for invoice in invoices:
        for line in invoice.lines.all():
            writer.writerow(
                [
                    str(invoice),
                    invoice.period_start.isoformat(),
                    invoice.period_end.isoformat(),
                    invoice.state,
                    invoice.currency,
                    line.meter,
                    line.item,
                    line.quantity,
                    line.units,
                    line.unit,
                    line.unit_price,
                    line.amount,
                ]
            )
    return out.getvalue()


# --- operator: revenue, outstanding invoices, credit balances ---------------------------------


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


def revenue_by_product(rows: Iterable[RevenueRow]) -> list[tuple[str, Decimal]]:
    totals: dict[str, Decimal] = {}
    for row in rows:
        totals[row.product] = totals.get(row.product, Decimal(0)) + row.amount
    return sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))


def revenue_chart(rows: Iterable[RevenueRow], *, first: date, last: date) -> dict:
    """Chart.js data: one stacked dataset per product, one label per day from `first` to
    `last`, zero where nothing was paid."""
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    index = {day: n for n, day in enumerate(days)}
    series: dict[str, list[float]] = {}
    for row in rows:
        data = series.setdefault(row.product, [0.0] * len(days))
        if row.day in index:
            data[index[row.day]] += float(row.amount)
    return {
        "labels": [day.isoformat() for day in days],
        "datasets": [{"label": product, "data": data} for product, data in sorted(series.items())],
    }


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
    """Per organization with unexpired grants: granted minus spent, as billing.selectors
    .credit_balance counts it. Two grouped queries (summing grants across a join to their
    spends would count each grant once per spend)."""
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


@dataclass(frozen=True)
class RevenueReport:
    first: date
    last: date
    rows: list[RevenueRow]
    by_product: list[tuple[str, Decimal]]
    total: Decimal
    chart: dict
    outstanding: list[Invoice]
    outstanding_total: Decimal
    balances: list[CreditBalance]


def revenue_report(*, first: date, last: date) -> RevenueReport:
    """Everything the operators' revenue page shows, in four queries."""
    rows = revenue_by_product_and_day(first=first, last=last)
    outstanding = list(outstanding_invoices())
    return RevenueReport(
        first=first,
        last=last,
        rows=rows,
        by_product=revenue_by_product(rows),
        total=sum((r.amount for r in rows), Decimal("0.00")),
        chart=revenue_chart(rows, first=first, last=last),
        outstanding=outstanding,
        outstanding_total=sum((i.total_due for i in outstanding), Decimal("0.00")),
        balances=credit_balances(),
    )
