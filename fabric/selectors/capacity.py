"""What the storefront can sell now: per GPU model and shape, how many can start now and when
the next could. Computed from the same snapshots as placement and cached for a few seconds, so
every catalog page can show it."""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange, NumericRange
from django.db.models import DateTimeField, Func, Min, QuerySet
from django.utils import timezone
from redis.exceptions import RedisError

from fabric.capacity.engine import PROFILES
from fabric.capacity.loader import load_snapshot
from fabric.models import (
    GPU,
    Allocation,
    AllocationState,
    Node,
    NodeState,
    Quota,
    Reservation,
)
from fabric.states import HOLDING
from portal.models import Organization

logger = logging.getLogger(__name__)
CACHE_KEY = "fabric:availability"
CACHE_SECONDS = 5
START_WINDOW = timedelta(hours=1)  # "can start now" means: free for at least the next hour


def _cache_get() -> list[dict] | None:
    """The cache is a shortcut: while Redis is slow or away, the rows are computed instead."""
    try:
        return cache.get(CACHE_KEY)
    except (RedisError, OSError) as error:
        logger.warning("Availability computed without the cache: %s", error)
        return None


def availability(*, now: datetime | None = None, use_cache: bool = True) -> list[dict]:
    if use_cache and (cached := _cache_get()) is not None:
        return cached
    now = now or timezone.now()
    models = (
        Node.objects.filter(state__in=(NodeState.AVAILABLE, NodeState.ALLOCATED))
        .exclude(gpu_model="")
        .order_by("gpu_model")
        .values_list("gpu_model", flat=True)
        .distinct()
    )
    next_free = dict(
        Allocation.objects.filter(state__in=HOLDING, ends_at__gt=now)
        .values("gpu_model")
        .annotate(first=Min("ends_at"))
        .values_list("gpu_model", "first")
    )
    rows = []
    for model in models:
        snap = load_snapshot(gpu_model=model, start=now, end=now + START_WINDOW)
        slices = sum(
            sum(units.bit_count() for units in node.units)
            for node in snap.nodes.values()
            if node.mig
        )
        shapes = {
            "node": snap.free_nodes(model),
            "gpu": snap.free_gpus(model),
            "slice_1g": slices // PROFILES["1g"],
        }
        for shape, now_count in shapes.items():
            rows.append(
                {
                    "gpu_model": model,
                    "shape": shape,
                    "available_now": now_count,
                    "next_available_at": None if now_count else next_free.get(model),
                }
            )
    with contextlib.suppress(RedisError, OSError):
        cache.set(CACHE_KEY, rows, CACHE_SECONDS)
    return rows


def queue_preview(
    *,
    gpu_model: str,
    nodes: int,
    units: int,
    site: str = "",
    needs_bmc: bool = False,
    now: datetime | None = None,
) -> dict:
    """Where a request for `nodes` whole nodes of `gpu_model` (`units` slice units), at `site`
    or anywhere (with `needs_bmc`, of the nodes with a BMC), would stand if it were made now,
    without making it: `free` (whole nodes that
    can start now there), `queued` (whether it would wait: too few free, or others already
    waiting, who go first), and if so its `position` (behind those waiting; fair share may move
    it up) and `estimated_start` (the first lease end after which what is free covers the
    units ahead of it and its own; None when no lease end does: open-ended leases)."""
    now = now or timezone.now()
    snap = load_snapshot(gpu_model=gpu_model, start=now, end=now + START_WINDOW)
    if needs_bmc:  # bare metal: only servers whose power the platform drives
        free = snap.free_bmc_nodes(gpu_model, site)
    else:
        free = snap.free_nodes_at(gpu_model, site) if site else snap.free_nodes(gpu_model)
    waiting = list(
        Allocation.objects.filter(state=AllocationState.QUEUED, gpu_model=gpu_model).values_list(
            "gpu_units", flat=True
        )
    )
    if free >= nodes and not waiting:
        return {"free": free, "queued": False, "position": None, "estimated_start": None}
    needed = sum(waiting) + units
    counted = [n for n in snap.nodes.values() if n.bmc or not needs_bmc]
    available = sum(sum(u.bit_count() for u in node.units) for node in counted)
    start = None
    holding = Allocation.objects.filter(
        state__in=HOLDING, gpu_model=gpu_model, ends_at__gt=now, reservation=None
    )
    ends = holding.order_by("ends_at").values_list("ends_at", "gpu_units")
    for ends_at, released in ends:
        available += released
        if available >= needed:
            start = ends_at
            break
    return {
        "free": free,
        "queued": True,
        "position": len(waiting) + 1,
        "estimated_start": start,
    }


def allocation_get(*, allocation_id: int) -> Allocation:
    return Allocation.objects.get(pk=allocation_id)


def allocation_gpu_uuids(*, allocation_id: int) -> list[str]:
    """The UUIDs of the GPUs the allocation has booked, sorted, each once."""
    uuids = GPU.objects.filter(bookings__allocation_id=allocation_id).values_list("uuid", flat=True)
    return sorted(set(uuids))


def reservation_held(
    *, reservation_id: int | None, organization: Organization
) -> Reservation | None:
    """The organization's reservation `reservation_id`, or None (none named, or not theirs)."""
    return Reservation.objects.filter(pk=reservation_id, organization=organization).first()


def allocation_list(*, organization: Organization) -> QuerySet[Allocation]:
    return Allocation.objects.filter(organization=organization, reservation=None)


def reservation_list(*, organization: Organization) -> QuerySet[Reservation]:
    return Reservation.objects.filter(organization=organization)


def quota_list(*, organization: Organization) -> QuerySet[Quota]:
    return Quota.objects.filter(organization=organization)


def metered_allocations(*, since: datetime) -> QuerySet[Allocation]:
    """Tenant allocations that became active and were still held after `since`: what GPU time
    is billed for (a lease that never became active — a failed boot — never appears)."""
    return (
        Allocation.objects.filter(reservation=None, events__to_state=AllocationState.ACTIVE)
        .exclude(released_at__lt=since)
        .distinct()
        .select_related("organization")
    )


def holding_allocations(*, organization: Organization) -> QuerySet[Allocation]:
    """The organization's leases that hold capacity now or later (not reservation holds)."""
    return Allocation.objects.filter(
        organization=organization, reservation=None, state__in=HOLDING
    ).exclude(state=AllocationState.RECLAIMING)


def reservation_holds(*, since: datetime) -> QuerySet[Allocation]:
    """Reservation holds (one per occurrence) whose window had not closed by `since`: the
    capacity a reservation keeps for its organization, used or not."""
    return (
        Allocation.objects.filter(reservation__isnull=False, ends_at__gt=since)
        .exclude(released_at__lt=since)
        .select_related("organization")
    )


def held_window(hold: Allocation) -> tuple[datetime, datetime]:
    """The time a hold kept its capacity: its window, cut short where it was released early (a
    cancelled reservation). Empty (end <= start) when it was released before it began."""
    end = hold.ends_at if hold.released_at is None else min(hold.ends_at, hold.released_at)
    return hold.starts_at, end


def claim_windows(*, allocation_ids) -> dict[int, tuple[datetime, datetime]]:
    """For each of the allocations that took its GPUs from a reservation hold
    (`reservation_claim`), the window that hold kept its capacity."""
    holds = Allocation.objects.filter(claims__in=list(allocation_ids)).values_list(
        "claims__id", "starts_at", "ends_at", "released_at"
    )
    return {
        claim: held_window(Allocation(starts_at=start, ends_at=end, released_at=released))
        for claim, start, end, released in holds
    }


def booking_list(*, allocation: Allocation) -> list[tuple[NumericRange, DateTimeTZRange]]:
    """What the allocation's bookings hold: (slice units of a GPU, period) for each."""
    return list(allocation.bookings.values_list("units", "period"))


def allocation_booked_since(*, allocation_ids) -> dict[int, datetime]:
    """For each of the allocations that has bookings, when the first of them began."""
    first = Min(Func("bookings__period", function="lower", output_field=DateTimeField()))
    return dict(
        Allocation.objects.filter(pk__in=allocation_ids, bookings__isnull=False)
        .annotate(first=first)
        .values_list("pk", "first")
    )
