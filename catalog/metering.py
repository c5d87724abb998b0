"""GPU time into the ledger: every active tenant allocation is metered per clock hour, from the
moment it became active until it was released, each hour written once (its idempotency key is
the allocation and the hour). Only closed hours are written; the running hour is estimated."""

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


def _span(allocation: Allocation, now: datetime) -> tuple[datetime, datetime]:
    end = allocation.released_at or (min(allocation.ends_at, now) if allocation.ends_at else now)
    return allocation.starts_at, min(end, now)


def _gpus(allocation: Allocation) -> Decimal:
    return Decimal(allocation.gpu_units) / SLICE_UNITS


def item_of(allocation: Allocation) -> str:
    return f"{allocation.gpu_model}:{allocation.shape}"


def meter_usage(*, now: datetime | None = None) -> int:
    """Write every closed hour (and the last part-hour of ended leases) not yet written."""
    now = now or timezone.now()
    written = 0
    for allocation in metered_allocations(since=now - LOOKBACK):
        start, end = _span(allocation, now)
        finished = allocation.released_at is not None or (
            allocation.ends_at is not None and allocation.ends_at <= now
        )
        bucket = _hour(start)
        while bucket < end:
            bucket_end = bucket + HOUR
            if bucket_end > now and not finished:
                break  # the running hour: written once it closes
            begin, stop = max(bucket, start), min(bucket_end, end)
            seconds = Decimal((stop - begin).total_seconds())
            _, created = usage_record(
                organization=allocation.organization,
                idempotency_key=f"allocation:{allocation.pk}:{bucket:%Y-%m-%dT%H}",
                meter="gpu_seconds",
                item=item_of(allocation),
                quantity=seconds * _gpus(allocation),
                started_at=begin,
                ended_at=stop,
                source=f"allocation:{allocation.pk}",
            )
            written += created
            bucket = bucket_end
    return written


def unmetered_cost(*, organization, now: datetime | None = None) -> Decimal:
    """The cost of the running hour of each active lease, not in the ledger yet."""
    now = now or timezone.now()
    total = Decimal(0)
    for allocation in metered_allocations(since=now).filter(
        organization=organization, released_at=None
    ):
        start = max(_hour(now), allocation.starts_at)
        if start >= now:
            continue
        price = price_for("gpu_seconds", item_of(allocation))
        seconds = Decimal((now - start).total_seconds()) * _gpus(allocation)
        total += seconds / price.unit_quantity * price.price
    return total.quantize(Decimal("0.01"))
