"""GPU time into the ledger: every tenant allocation that became active is metered per clock
hour from its bookings (each GPU or slice held, to the second), each hour written once (its
idempotency key is the allocation and the hour). Only closed hours are written; the running
hour is estimated. An allocation that an order holds is billed only from the order's ready
time to its end: a boot that failed, or time before the servers were usable, costs nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db.backends.postgresql.psycopg_any import DateTimeTZRange
from django.utils import timezone

from billing.ledger import usage_record
from billing.rating import price_for
from fabric.capacity.engine import SLICE_UNITS
from fabric.models import Allocation
from fabric.selectors_capacity import metered_allocations

HOUR = timedelta(hours=1)
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)
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


def _billable(allocation: Allocation, windows: dict) -> list:
    """The allocation's bookings, cut to its order's billable window when an order holds it."""
    bookings = list(allocation.bookings.values_list("units", "period"))
    if allocation.pk not in windows:
        return bookings
    ready, ended = windows[allocation.pk]
    if ready is None:
        return []  # never became ready: nothing to bill
    cut = []
    for units, period in bookings:
        lower = max(period.lower, ready)
        ends = [moment for moment in (period.upper, ended) if moment is not None]
        upper = min(ends) if ends else None
        if upper is None or upper > lower:
            cut.append((units, DateTimeTZRange(lower, upper, "[)")))
    return cut


def _order_windows(allocation_ids) -> dict:
    from catalog.models import Order

    return {
        allocation_id: (ready, ended)
        for allocation_id, ready, ended in Order.objects.filter(
            allocation_id__in=list(allocation_ids)
        ).values_list("allocation_id", "ready_at", "ended_at")
    }


def meter_usage(*, now: datetime | None = None, allocations=None) -> int:
    """Write every closed hour not yet written. Usage is read from the bookings themselves, so
    grows, shrinks, extensions and releases are metered to the second."""
    now = now or timezone.now()
    written = 0
    if allocations is None:
        allocations = metered_allocations(since=now - LOOKBACK)
    allocations = list(allocations)
    windows = _order_windows(a.pk for a in allocations)
    for allocation in allocations:
        bookings = _billable(allocation, windows)
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


def meter_allocation(*, allocation_id: int, now: datetime | None = None) -> int:
    """Write an ended allocation's usage now (its last, partial hour included)."""
    return meter_usage(
        now=now, allocations=metered_allocations(since=LONG_AGO).filter(pk=allocation_id)
    )


def order_cost(*, order, now: datetime | None = None) -> Decimal:
    """What the order has cost so far, priced as the ledger will price it."""
    if order.allocation_id is None or order.ready_at is None:
        return Decimal("0.00")
    now = now or timezone.now()
    allocation = order.allocation
    bookings = _billable(allocation, {allocation.pk: (order.ready_at, order.ended_at)})
    seconds = _gpu_seconds(bookings, order.ready_at, order.ended_at or now)
    price = price_for("gpu_seconds", item_of(allocation))
    return (seconds / price.unit_quantity * price.price).quantize(Decimal("0.01"))


def unmetered_cost(*, organization, now: datetime | None = None) -> Decimal:
    """The cost of the running hour of each active lease, not in the ledger yet."""
    now = now or timezone.now()
    total = Decimal(0)
    allocations = list(
        metered_allocations(since=now).filter(organization=organization, released_at=None)
    )
    windows = _order_windows(a.pk for a in allocations)
    for allocation in allocations:
        bookings = _billable(allocation, windows)
        seconds = _gpu_seconds(bookings, _hour(now), now)
        if seconds:
            price = price_for("gpu_seconds", item_of(allocation))
            total += seconds / price.unit_quantity * price.price
    return total.quantize(Decimal("0.01"))
