"""List prices per GPU-hour, until the rating engine of the billing work replaces them."""

from decimal import Decimal

from django.conf import settings


def gpu_hour_price(gpu_model: str) -> Decimal:
    prices = settings.GPU_HOUR_PRICES
    return Decimal(str(prices.get(gpu_model, prices.get("*", "2.00"))))


def quote(gpu_model: str, gpu_hours: float) -> Decimal:
    return (gpu_hour_price(gpu_model) * Decimal(str(gpu_hours))).quantize(Decimal("0.01"))
