"""The operators' revenue report: paid revenue by product and day, outstanding invoices and
credit balances across all organizations."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from billing import reports

REVENUE_DAYS_DEFAULT = 30
REVENUE_DAYS_MAX = 366


def _days(raw: str | None) -> int:
    try:
        return min(max(int(raw or REVENUE_DAYS_DEFAULT), 1), REVENUE_DAYS_MAX)
    except ValueError:
        return REVENUE_DAYS_DEFAULT


@staff_member_required
@require_GET
def revenue(request: HttpRequest) -> HttpResponse:
    days = _days(request.GET.get("days"))
    last = timezone.localdate()
    report = reports.revenue_report(first=last - timedelta(days=days - 1), last=last)
    return render(request, "billing/revenue.html", {"days": days, "report": report})
