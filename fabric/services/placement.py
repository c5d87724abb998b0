"""Placement: book capacity for an allocation from an in-memory snapshot (fabric.capacity),
start it, and hand whole nodes over. The allocations, queue and reservations services build on
these steps; this module imports none of them."""

from __future__ import annotations

import zlib
from datetime import datetime, timedelta

from django.db import DatabaseError, connection, transaction
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange, NumericRange

from fabric.capacity.engine import Placement, Request
from fabric.capacity.loader import booking_rows, capacity_booked, capacity_source
from fabric.models import Allocation, AllocationState, GpuBooking, Node, NodeState
from fabric.services.changes import change_records_bulk, snapshot
from fabric.states import allocation_transition, node_transition
from portal.celery import task
from portal.models import Organization
from portal.services.audit import Actor

A = AllocationState
PLACE_ATTEMPTS = 6


def _request(allocation: Allocation) -> Request:
    return Request(
        model=allocation.gpu_model,
        count=allocation.count,
        shape=allocation.shape,
        topology=allocation.topology,
        required=allocation.topology_required,
        profile=allocation.slice_profile,
        site=allocation.site,
        bmc=allocation.needs_bmc,
    )


def lock_model(gpu_model: str) -> None:
    """Serialise capacity changes of one GPU model until the transaction ends. Requests for
    different models run in parallel; the exclusion constraint still guards every booking."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [zlib.crc32(gpu_model.encode())])


def lock_allocation(allocation: Allocation) -> Allocation:
    """The allocation's model lock, then its row (always in that order). The model never
    changes, so a loaded allocation names it; a bare `Allocation(pk=...)` is looked up."""
    lock_model(
        allocation.gpu_model
        or Allocation.objects.values_list("gpu_model", flat=True).get(pk=allocation.pk)
    )
    return Allocation.objects.select_for_update().get(pk=allocation.pk)


def is_conflict(error: DatabaseError) -> bool:
    """An exclusion violation (23P01) or deadlock (40P01): someone booked first; try again."""
    return getattr(error.__cause__, "sqlstate", None) in ("23P01", "40P01")


def _is_stale(error: DatabaseError) -> bool:
    """A foreign key violation (23503): a GPU or node of a cached source is gone."""
    return getattr(error.__cause__, "sqlstate", None) == "23503"


def _commit_placement(
    allocation: Allocation, rows, start: datetime, end: datetime | None
) -> list[GpuBooking]:
    period = DateTimeTZRange(start, end, "[)")
    return GpuBooking.objects.bulk_create(
        [
            GpuBooking(
                allocation=allocation,
                node_id=node_id,
                gpu_id=gpu_id,
                units=NumericRange(first, first + count),
                period=period,
            )
            for node_id, gpu_id, first, count in sorted(rows, key=lambda r: r[1])
        ]
    )


def place(
    *, allocation: Allocation, now: datetime, actor: Actor, placement_for=None
) -> Placement | None:
    """Book capacity for `allocation` (locked, in the caller's transaction, under its model's
    lock). `placement_for`, given a snapshot, returns the placement to try (default: the
    allocation's own request). Returns the placement, or None when it does not fit now.

    The snapshot comes from this process's cached source (fabric.capacity.loader): a conflict
    or a vanished GPU means it was stale, and "does not fit" is only said after a full load."""
    start = max(allocation.starts_at, now)
    end = allocation.ends_at or (
        start + timedelta(seconds=allocation.lease_seconds) if allocation.lease_seconds else None
    )
    choose = placement_for or (lambda snap: snap.place(_request(allocation)))
    model, fresh = allocation.gpu_model, False
    for _ in range(PLACE_ATTEMPTS):
        source, fresh = capacity_source(gpu_model=model, start=start, fresh=fresh)
        snap = source.at(start, end)
        placement = choose(snap)
        if placement is None:
            if fresh:
                return None
            fresh = True  # capacity freed by another process may be missing: look again
            continue
        try:
            with transaction.atomic():
                booked = _commit_placement(allocation, booking_rows(snap, placement), start, end)
        except DatabaseError as error:
            if not (is_conflict(error) or (_is_stale(error) and not fresh)):
                raise
            fresh = True  # another request took some of these GPUs first: look again
            continue
        capacity_booked(gpu_model=model, rows=[(b.pk, b.gpu_id, b.units, b.period) for b in booked])
        allocation.starts_at, allocation.ends_at = start, end
        allocation.placed_at = now
        allocation.save(update_fields=["starts_at", "ends_at", "placed_at"])
        return placement
    return None


def nodes_of(allocation: Allocation) -> list[Node]:
    return list(Node.objects.filter(bookings__allocation=allocation).distinct().order_by("pk"))


def hand_nodes(nodes: list[Node], *, to: Organization | None, actor: Actor) -> None:
    """Whole nodes change hands: allocated to a tenant, or given back. A node given back goes
    to cleaning (fabric.services.cleaning erases it; placement takes available nodes only)."""
    before = [snapshot(node) for node in nodes]
    for node in nodes:
        locked = Node.objects.select_for_update().get(pk=node.pk)
        target = NodeState.ALLOCATED if to else NodeState.CLEANING
        if locked.state != target:
            node_transition(node=locked, to=target, actor=actor.label)
        locked.organization = to
        locked.save(update_fields=["organization", "updated_at"])
        node.state, node.organization = locked.state, to
        if to is None:
            _on_commit_clean(node.pk)
    change_records_bulk(actor=actor, updated=list(zip(before, nodes, strict=True)))


def _on_commit_clean(node_id: int) -> None:
    transaction.on_commit(lambda: task("fabric.tasks.node_clean").delay(node_id))


def activate(*, allocation: Allocation, now: datetime, actor: Actor) -> None:
    if allocation.state == A.QUEUED or allocation.state == A.REQUESTED:
        allocation_transition(allocation=allocation, to=A.PLACED, actor=actor.label)
    if allocation.starts_at <= now and allocation.state == A.PLACED:
        allocation_transition(allocation=allocation, to=A.ACTIVE, actor=actor.label)
        if allocation.shape == Allocation.Shape.NODE and allocation.reservation_id is None:
            hand_nodes(nodes_of(allocation), to=allocation.organization, actor=actor)
    if allocation.queue_position is not None or allocation.estimated_start is not None:
        allocation.queue_position = allocation.estimated_start = None
        allocation.save(update_fields=["queue_position", "estimated_start"])
