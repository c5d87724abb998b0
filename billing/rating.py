"""Rating: usage x price = charges. Prices are Rate rows; GPU time falls back to the list
prices in settings (GPU_HOUR_PRICES) until an operator sets rates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db.models import Sum

from billing.models import Rate, UsageEvent
from portal.models import Organization

CENT = Decimal("0.01")
HOUR = Decimal(3600)
MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class Price:
    unit: str
    unit_quantity: Decimal  # meter quantity per unit
    price: Decimal


def price_for(meter: str, item: str) -> Price:
    rate = Rate.objects.filter(meter=meter, item__in=[item, "*"]).order_by("-item").first()
    if rate is not None:  # an exact item sorts after "*" in descending order
        return Price(rate.unit, rate.unit_quantity, rate.price)
    if meter == UsageEvent.Meter.GPU_SECONDS:
        prices = settings.GPU_HOUR_PRICES
        model = item.split(":")[0]
        return Price("GPU-hour", HOUR, Decimal(str(prices.get(model, prices.get("*", "2.00")))))
    if meter in (UsageEvent.Meter.INPUT_TOKENS, UsageEvent.Meter.OUTPUT_TOKENS):
        side = "input" if meter == UsageEvent.Meter.INPUT_TOKENS else "output"
        listed = settings.TOKEN_PRICES.get(item, settings.TOKEN_PRICES.get("*", {})).get(side)
        if listed is not None:
            return Price("million tokens", MILLION, Decimal(str(listed)))
    raise LookupError(f"No rate for {meter} of {item!r}.")


@dataclass(frozen=True)
class Charge:
    meter: str
    item: str
    quantity: Decimal
    unit: str
    units: Decimal
    unit_price: Decimal
    amount: Decimal


def charges(*, organization: Organization, start: datetime, end: datetime) -> list[Charge]:
    """What the organization's usage that started in [start, end) costs, per meter and item
    (corrections included), each line rounded to the cent."""
    rows = (
        UsageEvent.objects.filter(
            organization=organization, started_at__gte=start, started_at__lt=end
        )
        .values("meter", "item")
        .annotate(quantity=Sum("quantity"))
        .order_by("meter", "item")
    )
    result = []
    for row in rows:
        price = price_for(row["meter"], row["item"])
        units = row["quantity"] / price.unit_quantity
        amount = (units * price.price).quantize(CENT, rounding=ROUND_HALF_UP)
        result.append(
            Charge(
                row["meter"], row["item"], row["quantity"], price.unit, units, price.price, amount
            )
        )
    return result


def running_cost(*, organization: Organization, start: datetime, end: datetime) -> Decimal:
    return sum(
        (c.amount for c in charges(organization=organization, start=start, end=end)), Decimal(0)
    )
