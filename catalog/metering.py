"""GPU time into the ledger, per clock hour, each hour written once (its idempotency key names
what was held and the hour). Only closed hours are written; the running hour is estimated.

- An allocation that became active is metered from its bookings (each GPU or slice held, to
  the second). One that an order holds is billed only from the order's ready time to its end:
  a boot that failed, or time before the servers were usable, costs nothing. One held without
  an order (a raw capacity hold through the API) is billed from its bookings, used or not.
- A reservation is billed for the capacity it keeps, used or not: its GPUs for each
  occurrence's window, until the window ends or the reservation is cancelled (`reservation:`
  keys, item `<model>:reserved`). What a notebook claims from it (`reservation_claim`) is not
  billed again while the reservation keeps that capacity; only time outside it is."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db.backends.postgresql.psycopg_any import DateTimeTZRange
from django.utils import timezone

from billing.rating import Price, price_for
from billing.services.ledger import usage_record
from fabric.capacity.engine import SLICE_UNITS
from fabric.choices import AllocationState
from fabric.selectors.capacity import (
    allocation_booked_since,
    booking_list,
    claim_windows,
    held_window,
    metered_allocations,
    reservation_holds,
)

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


def item_of(allocation) -> str:
    return f"{allocation.gpu_model}:{allocation.shape}"


def reserved_item(gpu_model: str) -> str:
    """What a reservation is rated as (`catalog.pricing.quote` prices the same item)."""
    return f"{gpu_model}:reserved"


def _without(bookings: list, window: tuple[datetime, datetime]) -> list:
    """The bookings less the time inside `window` (a booking may split in two)."""
    begin, end = window
    if end <= begin:
        return bookings
    left = []
    for units, period in bookings:
        if period.lower < begin:
            upper = begin if period.upper is None else min(period.upper, begin)
            left.append((units, DateTimeTZRange(period.lower, upper, "[)")))
        if period.upper is None or period.upper > end:
            left.append((units, DateTimeTZRange(max(period.lower, end), period.upper, "[)")))
    return left


def _billable(allocation, windows: dict, covered: dict) -> list:
    """The allocation's bookings, cut to its order's billable window when an order holds it,
    less the time a reservation it was claimed from pays for."""
    bookings = booking_list(allocation=allocation)
    if allocation.pk in windows:
        _, ready, ended = windows[allocation.pk]
        if ready is None:
            return []  # never became ready: nothing to bill
        cut = []
        for units, period in bookings:
            lower = max(period.lower, ready)
            ends = [moment for moment in (period.upper, ended) if moment is not None]
            upper = min(ends) if ends else None
            if upper is None or upper > lower:
                cut.append((units, DateTimeTZRange(lower, upper, "[)")))
        bookings = cut
    if allocation.pk in covered:
        bookings = _without(bookings, covered[allocation.pk])
    return bookings


def _order_windows(allocation_ids) -> dict:
    """allocation id -> (order id, ready, ended) for the allocations orders hold."""
    from catalog.models import Order

    return {
        allocation_id: (order_id, ready, ended)
        for allocation_id, order_id, ready, ended in Order.objects.filter(
            allocation_id__in=list(allocation_ids)
        ).values_list("allocation_id", "pk", "ready_at", "ended_at")
    }


def _reserved_seconds(hold, begin: datetime, stop: datetime) -> Decimal:
    """GPU-seconds a reservation hold kept inside [begin, stop), whatever ran on them."""
    start, end = held_window(hold)
    seconds = (min(end, stop) - max(start, begin)).total_seconds()
    if seconds <= 0:
        return Decimal(0)
    return Decimal(str(seconds)) * Decimal(hold.gpu_units) / SLICE_UNITS


def _write_hours(*, organization, key: str, item: str, source: str, start, end, now, quantity):
    """Write each closed hour of [start, end) (end None: still running) not yet written."""
    written = 0
    end = now if end is None else min(end, now)
    bucket = _hour(start)
    while bucket < end:
        stop = min(bucket + HOUR, end)
        if bucket + HOUR > now and end == now:
            break  # the running hour: written once it closes
        amount = quantity(bucket, stop)
        if amount:
            _, created = usage_record(
                organization=organization,
                idempotency_key=f"{key}:{bucket:%Y-%m-%dT%H}",
                meter="gpu_seconds",
                item=item,
                quantity=amount,
                started_at=max(bucket, start),
                ended_at=stop,
                source=source,
            )
            written += created
        bucket += HOUR
    return written


def meter_usage(*, now: datetime | None = None, allocations=None) -> int:
    """Write every closed hour not yet written. Usage is read from the bookings themselves, so
    grows, shrinks, extensions and releases are metered to the second; reservations from
    their holds' windows (and every reservation only when `allocations` is not given)."""
    now = now or timezone.now()
    written = 0
    meter_reservations = allocations is None
    if allocations is None:
        allocations = metered_allocations(since=now - LOOKBACK)
    allocations = list(allocations)
    windows = _order_windows(a.pk for a in allocations)
    covered = claim_windows(allocation_ids=[a.pk for a in allocations])
    for allocation in allocations:
        bookings = _billable(allocation, windows, covered)
        if not bookings:
            continue
        ends = [period.upper for _, period in bookings]
        written += _write_hours(
            organization=allocation.organization,
            key=f"allocation:{allocation.pk}",
            item=item_of(allocation),
            source=f"allocation:{allocation.pk}",
            start=min(period.lower for _, period in bookings),
            end=None if None in ends else max(ends),
            now=now,
            quantity=lambda begin, stop, b=bookings: _gpu_seconds(b, begin, stop),
        )
    if meter_reservations:
        written += _meter_reservations(now)
    return written


def _meter_reservations(now: datetime) -> int:
    written = 0
    for hold in reservation_holds(since=now - LOOKBACK):
        start, end = held_window(hold)
        if end <= start:
            continue  # cancelled before it began: nothing to bill
        written += _write_hours(
            organization=hold.organization,
            key=f"reservation:{hold.reservation_id}:{hold.pk}",
            item=reserved_item(hold.gpu_model),
            source=f"reservation:{hold.reservation_id}",
            start=start,
            end=end,
            now=now,
            quantity=lambda begin, stop, h=hold: _reserved_seconds(h, begin, stop),
        )
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
    windows = {allocation.pk: (order.pk, order.ready_at, order.ended_at)}
    bookings = _billable(allocation, windows, claim_windows(allocation_ids=[allocation.pk]))
    seconds = _gpu_seconds(bookings, order.ready_at, order.ended_at or now)
    price = price_for("gpu_seconds", item_of(allocation))
    return (seconds / price.unit_quantity * price.price).quantize(Decimal("0.01"))


def unmetered_cost(*, organization, now: datetime | None = None) -> Decimal:
    """The cost of the running hour of each active lease and reservation, not in the ledger
    yet."""
    now = now or timezone.now()
    total = Decimal(0)
    allocations = list(
        metered_allocations(since=now).filter(organization=organization, released_at=None)
    )
    windows = _order_windows(a.pk for a in allocations)
    covered = claim_windows(allocation_ids=[a.pk for a in allocations])
    for allocation in allocations:
        bookings = _billable(allocation, windows, covered)
        seconds = _gpu_seconds(bookings, _hour(now), now)
        if seconds:
            price = price_for("gpu_seconds", item_of(allocation))
            total += seconds / price.unit_quantity * price.price
    for hold in reservation_holds(since=now).filter(organization=organization):
        seconds = _reserved_seconds(hold, _hour(now), now)
        if seconds:
            price = price_for("gpu_seconds", reserved_item(hold.gpu_model))
            total += seconds / price.unit_quantity * price.price
    return total.quantize(Decimal("0.01"))


# --- what the tenant is told ----------------------------------------------------------------


@dataclass(frozen=True)
class Billing:
    """How an allocation is billed, for the API and the capacity page."""

    billed: bool  # whether it costs anything (now, or once it starts)
    hourly_price: Decimal  # what it is (or would be) billed an hour for all it holds
    since: datetime | None  # when billing starts or started (None: not known yet, or never)
    note: str


def _hourly(price: Price, gpu_units: int) -> Decimal:
    per_gpu_hour = price.price * Decimal(3600) / price.unit_quantity
    return (per_gpu_hour * gpu_units / SLICE_UNITS).quantize(Decimal("0.01"))


def allocation_billing(*, allocations) -> dict[int, Billing]:
    """How each allocation is billed, in a fixed number of queries (plus one per distinct item
    priced): with its order, from the order's ready time; inside the reservation it was claimed
    from, by that reservation; otherwise — a capacity hold without an order — at the list
    price from when its GPUs were booked until it is released, used or not."""
    allocations = list(allocations)
    ids = [a.pk for a in allocations]
    windows = _order_windows(ids)
    covered = claim_windows(allocation_ids=ids)
    booked = allocation_booked_since(allocation_ids=ids)
    prices: dict[str, Price] = {}
    result = {}
    for allocation in allocations:
        item = item_of(allocation)
        if item not in prices:
            prices[item] = price_for("gpu_seconds", item)
        rate = _hourly(prices[item], allocation.gpu_units)
        result[allocation.pk] = _terms(
            allocation,
            rate,
            windows.get(allocation.pk),
            covered.get(allocation.pk),
            booked.get(allocation.pk),
        )
    return result


def _terms(allocation, rate: Decimal, order, cover, booked) -> Billing:
    if cover is not None:  # claimed from a reservation (a lab session's notebook)
        until = cover[1]
        note = f"Paid for by its reservation until {until:%Y-%m-%d %H:%M} UTC"
        if allocation.ends_at is None or allocation.ends_at > until:
            return Billing(True, rate, until, f"{note}; ${rate}/h after that.")
        return Billing(False, rate, None, f"{note}: nothing more to pay.")
    if order is not None:
        order_id, ready, _ = order
        return Billing(
            True,
            rate,
            ready,
            f"Billed with order #{order_id} at ${rate}/h from when it was ready, not before.",
        )
    if booked is not None:
        return Billing(
            True,
            rate,
            booked,
            f"A capacity hold without an order: ${rate}/h from {booked:%Y-%m-%d %H:%M} UTC "
            "until it is released, used or not.",
        )
    if allocation.state in (AllocationState.REQUESTED, AllocationState.QUEUED):
        return Billing(
            True,
            rate,
            None,
            f"A capacity hold without an order: ${rate}/h once its GPUs are booked for it, "
            "used or not; nothing while it waits.",
        )
    return Billing(False, rate, None, "It never held GPUs: nothing to pay.")
