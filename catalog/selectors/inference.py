"""Reads for the inference pages, scoped to the caller's organization: its keys, and its token
usage by day, key and model from the billing ledger (never another organization's)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from billing import selectors as billing_selectors
from billing.rating import price_for
from catalog.models import InferenceKey
from portal.models import Membership


@dataclass(frozen=True)
class TokenPrice:
    model: str
    kind: str
    input: Decimal | None  # dollars per million tokens; None: not charged
    output: Decimal | None


def inference_price_list() -> list[TokenPrice]:
    """What each served model costs per million tokens, in and out, as the gateway meters it
    (the operator's rates, else the list prices)."""

    def per_million(meter: str, model: str) -> Decimal | None:
        try:
            price = price_for(meter, model)
        except LookupError:
            return None
        dollars = (price.price * 1_000_000 / price.unit_quantity).quantize(Decimal("0.0001"))
        cents = dollars.quantize(Decimal("0.01"))
        return cents if cents == dollars else dollars.normalize()

    return [
        TokenPrice(
            model,
            spec["kind"],
            per_million("input_tokens", model),
            per_million("output_tokens", model),
        )
        for model, spec in settings.INFERENCE_MODELS.items()
    ]


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
    usage = billing_selectors.token_usage(organization_id=membership.organization_id, since=since)
    rows: dict[tuple[str, str], dict] = {}
    for total in usage.totals:
        key = total.source.removeprefix("key:")
        row = rows.setdefault(
            (key, total.model),
            {"key": key, "model": total.model, "input": 0, "output": 0, "cost": Decimal(0)},
        )
        row[total.side] += int(total.tokens)
        row["cost"] += total.cost
    by_day: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for day, item, quantity in usage.by_day:
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
