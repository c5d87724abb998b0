"""The queue: requests that do not fit wait, ordered by priority, then fair share (who holds
least goes first), then age. The head is started as soon as it fits; a later request may jump
ahead (backfill) only if that cannot delay the head: it ends before the head's estimated start,
or it fits in what will be left over at that time."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from fabric.capacity.loader import load_snapshot
from fabric.models import Allocation, AllocationState
from fabric.services.placement import activate, lock_model, place
from fabric.states import HOLDING
from portal.services.audit import Actor

A = AllocationState


def queue_order(gpu_model: str) -> list[Allocation]:
    queued = list(
        Allocation.objects.filter(state=A.QUEUED, gpu_model=gpu_model).order_by("created_at", "pk")
    )
    usage = dict(
        Allocation.objects.filter(state__in=HOLDING)
        .values("organization")
        .annotate(units=Sum("gpu_units"))
        .values_list("organization", "units")
    )
    return sorted(
        queued, key=lambda a: (-a.priority, usage.get(a.organization_id, 0), a.created_at, a.pk)
    )


def _free_units_now(gpu_model: str, now: datetime) -> int:
    snap = load_snapshot(gpu_model=gpu_model, start=now, end=now + timedelta(seconds=1))
    return sum(sum(u.bit_count() for u in node.units) for node in snap.nodes.values())


def _lease_ends(gpu_model: str, now: datetime) -> list[tuple[datetime, int]]:
    return list(
        Allocation.objects.filter(
            state__in=HOLDING, gpu_model=gpu_model, ends_at__gt=now, reservation=None
        )
        .order_by("ends_at")
        .values_list("ends_at", "gpu_units")
    )


def _when(units: int, free: int, ends: list[tuple[datetime, int]], now: datetime):
    """When `units` slice units will be free, counting leases as they end (None: not known)."""
    if free >= units:
        return now
    for ends_at, released in ends:
        free += released
        if free >= units:
            return ends_at
    return None


@transaction.atomic
def queue_estimate(*, gpu_model: str, now: datetime | None = None) -> None:
    """Write each waiting request's position and estimated start."""
    now = now or timezone.now()
    lock_model(gpu_model)
    order = queue_order(gpu_model)
    free, ends = _free_units_now(gpu_model, now), _lease_ends(gpu_model, now)
    ahead = 0
    for position, allocation in enumerate(order, start=1):
        ahead += allocation.gpu_units
        allocation.queue_position = position
        allocation.estimated_start = _when(ahead, free, ends, now)
    Allocation.objects.bulk_update(order, ["queue_position", "estimated_start"])


def queue_process(*, gpu_model: str, now: datetime | None = None) -> dict:
    """Start what can start, in order, with backfill that never delays the head."""
    now = now or timezone.now()
    actor = Actor.system("task")
    started, backfilled = 0, 0
    with transaction.atomic():
        lock_model(gpu_model)
        head, shadow, extra = None, None, 0
        for allocation in queue_order(gpu_model):
            allocation = Allocation.objects.select_for_update().get(pk=allocation.pk)
            if allocation.state != A.QUEUED:
                continue
            if head is not None:
                ends = (
                    now + timedelta(seconds=allocation.lease_seconds)
                    if allocation.lease_seconds
                    else None
                )
                done_in_time = ends is not None and (shadow is None or ends <= shadow)
                if not (done_in_time or allocation.gpu_units <= extra):
                    continue
            if place(allocation=allocation, now=now, actor=actor):
                activate(allocation=allocation, now=now, actor=actor)
                if head is None:
                    started += 1
                else:
                    backfilled += 1
                    if not done_in_time:
                        extra -= allocation.gpu_units
                continue
            if head is None:
                head = allocation
                free, leases = _free_units_now(gpu_model, now), _lease_ends(gpu_model, now)
                shadow = _when(head.gpu_units, free, leases, now)
                if shadow is not None:
                    freed = sum(u for t, u in leases if t <= shadow)
                    extra = max(free + freed - head.gpu_units, 0)
    queue_estimate(gpu_model=gpu_model, now=now)
    return {"started": started, "backfilled": backfilled}
