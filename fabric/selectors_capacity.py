"""What the storefront can sell now: per GPU model and shape, how many can start now and when
the next could. Computed from the same snapshots as placement and cached for a few seconds, so
every catalog page can show it."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core.cache import cache
from django.db.models import Min, QuerySet
from django.utils import timezone

from fabric.capacity.engine import PROFILES
from fabric.capacity.loader import load_snapshot
from fabric.models import Allocation, AllocationState, Node, NodeState, Quota, Reservation
from fabric.states import HOLDING
from portal.models import Organization

CACHE_KEY = "fabric:availability"
CACHE_SECONDS = 5
START_WINDOW = timedelta(hours=1)  # "can start now" means: free for at least the next hour


def availability(*, now: datetime | None = None, use_cache: bool = True) -> list[dict]:
    if use_cache and (cached := cache.get(CACHE_KEY)) is not None:
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
    cache.set(CACHE_KEY, rows, CACHE_SECONDS)
    return rows


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
