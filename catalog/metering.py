"""GPU time into the ledger: every tenant allocation that became active is metered per clock
hour from its bookings (each GPU or slice held, to the second), each hour written once (its
idempotency key is the allocation and the hour). Only closed hours are written; the running
hour is estimated."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from billing.ledger import usage_record
from billing.rating import price_for
from fabric.capacity.engine import SLICE_UNITS
from fabric.models import Allocation
from fabric.selectors_capacity import metered_allocations

HOUR = timedelta(hours=1)
LOOKBACK = timedelta(days=7)


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _overlap(period, begin: datetime, stop: datetime) -> float:
    lower, upper = max(period.lower, begin), min(period.upper or stop, stop)
    return max((upper - lower).total_seconds(), 0.0)


def _gpu_seconds(bookings, begin: datetime, stop: datetime) -> Decimal:
    """GPU-seconds the bookings held inside [begin, stop): a MIG slice counts its share."""
    total = Decimal(0)
    for units, period in bookings:
        seconds = _overlap(period, begin, stop)
        if seconds:
            total += Decimal(str(seconds)) * Decimal(units.upper - units.lower) / SLICE_UNITS
    return total


def item_of(allocation: Allocation) -> str:
    return f"{allocation.gpu_model}:{allocation.shape}"


def meter_usage(*, now: datetime | None = None) -> int:
    """Write every closed hour not yet written. Usage is read from the bookings themselves, so
    grows, shrinks, extensions and releases are metered to the second."""
    now = now or timezone.now()
    written = 0
    for allocation in metered_allocations(since=now - LOOKBACK):
        bookings = list(allocation.bookings.values_list("units", "period"))
        if not bookings:
            continue
        start = min(period.lower for _, period in bookings)
        ends = [period.upper for _, period in bookings]
        end = now if None in ends else min(max(ends), now)
        bucket = _hour(start)
        while bucket < end:
            stop = min(bucket + HOUR, end)
            if bucket + HOUR > now and end == now:
                break  # the running hour: written once it closes
            quantity = _gpu_seconds(bookings, bucket, stop)
            if quantity:
                _, created = usage_record(
                    organization=allocation.organization,
                    idempotency_key=f"allocation:{allocation.pk}:{bucket:%Y-%m-%dT%H}",
                    meter="gpu_seconds",
                    item=item_of(allocation),
                    quantity=quantity,
                    started_at=max(bucket, start),
                    ended_at=stop,
                    source=f"allocation:{allocation.pk}",
                )
                written += created
            bucket += HOUR
    return written


def unmetered_cost(*, organization, now: datetime | None = None) -> Decimal:
    """The cost of the running hour of each active lease, not in the ledger yet."""
    now = now or timezone.now()
    total = Decimal(0)
    for allocation in metered_allocations(since=now).filter(
        organization=organization, released_at=None
    ):
        bookings = list(allocation.bookings.values_list("units", "period"))
        seconds = _gpu_seconds(bookings, _hour(now), now)
        if seconds:
            price = price_for("gpu_seconds", item_of(allocation))
            total += seconds / price.unit_quantity * price.price
    return total.quantize(Decimal("0.01"))
