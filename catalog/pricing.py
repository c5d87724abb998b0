"""Prices the storefront quotes, read from billing's rates (so an operator's Rate rows and
the list prices in settings apply to quotes and invoices alike)."""

from decimal import Decimal

from billing.rating import HOUR, price_for


def gpu_hour_price(gpu_model: str, shape: str = "gpu") -> Decimal:
    price = price_for("gpu_seconds", f"{gpu_model}:{shape}")
    return (price.price * HOUR / price.unit_quantity).quantize(Decimal("0.01"))


def quote(gpu_model: str, gpu_hours: float) -> Decimal:
    """A reservation's price: its GPU-hours at the rate of `<model>:reserved`, the item its
    hours are billed as (catalog.metering)."""
    hours = Decimal(str(gpu_hours))
    return (gpu_hour_price(gpu_model, "reserved") * hours).quantize(Decimal("0.01"))
