"""Reads for the inference pages, scoped to the caller's organization: its keys, and its token
usage by day, key and model from the billing ledger (never another organization's)."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

from django.db.models import QuerySet, Sum
from django.db.models.functions import TruncDate
from django.http import Http404
from django.utils import timezone

from billing.models import UsageEvent
from billing.rating import price_for
from catalog.models import InferenceKey
from portal.models import Membership

METERS = (UsageEvent.Meter.INPUT_TOKENS, UsageEvent.Meter.OUTPUT_TOKENS)


def inference_key_list(*, membership: Membership) -> QuerySet[InferenceKey]:
    return InferenceKey.objects.filter(organization_id=membership.organization_id)


def inference_key_get(*, membership: Membership, key_id: int) -> InferenceKey:
    try:
        return inference_key_list(membership=membership).get(pk=key_id)
    except InferenceKey.DoesNotExist:
        raise Http404("No such key.") from None


def token_usage(*, membership: Membership, days: int = 14) -> dict:
    """Per key and model: input and output tokens and cost; and a chart of tokens per day by
    model over the last `days` days."""
    since = timezone.now() - timedelta(days=days)
    events = UsageEvent.objects.filter(
        organization_id=membership.organization_id, meter__in=METERS, started_at__gte=since
    )
    rows: dict[tuple[str, str], dict] = {}
    for source, item, meter, quantity in (
        events.values_list("source", "item", "meter").annotate(q=Sum("quantity")).order_by()
    ):
        row = rows.setdefault(
            (source.removeprefix("key:"), item),
            {"key": source.removeprefix("key:"), "model": item, "input": 0, "output": 0,
             "cost": Decimal(0)},
        )  # fmt: skip
        side = "input" if meter == UsageEvent.Meter.INPUT_TOKENS else "output"
        row[side] += int(quantity)
        price = price_for(meter, item)
        row["cost"] += quantity / price.unit_quantity * price.price
    by_day: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for day, item, quantity in (
        events.annotate(day=TruncDate("started_at"))
        .values_list("day", "item")
        .annotate(q=Sum("quantity"))
        .order_by("day")
    ):
        by_day[item][day.isoformat()] += int(quantity)
    labels = [(since + timedelta(days=n + 1)).date().isoformat() for n in range(days)]
    chart = {
        "labels": labels,
        "datasets": [
            {"label": model, "data": [by_day[model].get(day, 0) for day in labels]}
            for model in sorted(by_day)
        ],
    }
    for row in rows.values():
        row["cost"] = row["cost"].quantize(Decimal("0.000001"))
    return {"rows": sorted(rows.values(), key=lambda r: (r["key"], r["model"])), "chart": chart}
