"""How billing's reads are shown: the printed invoice (seller, lines, payment reference), the
lines as CSV, and the operators' revenue report (totals and chart). The reads themselves are
billing.selectors; nothing here queries the database beyond them."""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings

from billing import selectors
from billing.models import Invoice
from billing.selectors import CreditBalance, RevenueRow
from portal.spreadsheets import csv_writer

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


def seller() -> dict[str, str]:
    return {**DEFAULT_SELLER, **getattr(settings, "BILLING_SELLER", {})}


def plain(value: Decimal, places: int = 0) -> str:
    """A stored decimal without its trailing zeros (2.000000 -> 2), at least `places` places."""
    text = f"{value.normalize():f}"
    whole, _, fraction = text.partition(".")
    fraction = fraction.ljust(places, "0")
    return f"{whole}.{fraction}" if fraction else whole


# --- tenant: the printed invoice and its CSV ---------------------------------------------------


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
            product=selectors.product_label(line.meter, line.item),
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
    the stored decimals, exact; text that a spreadsheet would run as a formula is inert."""
    out = io.StringIO()
    writer = csv_writer(out, lineterminator="\r\n")
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


# --- operator: the revenue report ---------------------------------------------------------------


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
    rows = selectors.revenue_by_product_and_day(first=first, last=last)
    outstanding = list(selectors.outstanding_invoices())
    return RevenueReport(
        first=first,
        last=last,
        rows=rows,
        by_product=revenue_by_product(rows),
        total=sum((r.amount for r in rows), Decimal("0.00")),
        chart=revenue_chart(rows, first=first, last=last),
        outstanding=outstanding,
        outstanding_total=sum((i.total_due for i in outstanding), Decimal("0.00")),
        balances=selectors.credit_balances(),
    )
