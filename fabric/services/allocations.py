"""Allocations: request (quota, then place or queue), release, extend, grow, shrink, and the
lease sweep. Decisions come from an in-memory snapshot (fabric.capacity); the database's
exclusion constraint checks each commit, so a stale snapshot only costs another try."""

from __future__ import annotations

import zlib
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import DatabaseError, connection, transaction
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange, NumericRange
from django.db.models import Count
from django.dispatch import Signal
from django.utils import timezone

from fabric.capacity.engine import LEVELS, PROFILES, SLICE_UNITS, TOPOLOGIES, Placement, Request
from fabric.capacity.loader import CapacitySource, booking_rows, load_snapshot
from fabric.models import GPU, Allocation, AllocationState, GpuBooking, Node, NodeState
from fabric.services.changes import change_records_bulk, snapshot
from fabric.services.quotas import quota_check
from fabric.states import HOLDING, allocation_transition, node_transition
from portal.models import Membership, Organization
from portal.services.audit import Actor

A = AllocationState
PLACE_ATTEMPTS = 6
EXPIRY_WARNING = timedelta(hours=1)
# Sent when a lease is reclaimed, so whatever runs on it (an order) can stop. Receivers get
# `allocation`; fabric does not know who listens.
allocation_reclaimed = Signal()


class CapacityConflict(ValidationError):
    pass


def gpus_per_node(gpu_model: str) -> int:
    counts = (
        GPU.objects.filter(node__gpu_model=gpu_model)
        .values("node")
        .annotate(n=Count("pk"))
        .order_by("-n")
        .values_list("n", flat=True)[:1]
    )
    if not counts:
        raise ValidationError({"gpu_model": f"No {gpu_model} GPUs are in the inventory."})
    return counts[0]


def _units(shape: str, gpu_model: str, count: int, profile: str) -> int:
    if shape == Allocation.Shape.NODE:
        return count * gpus_per_node(gpu_model) * SLICE_UNITS
    if shape == Allocation.Shape.GPU:
        gpus_per_node(gpu_model)  # the model must exist
        return count * SLICE_UNITS
    if profile not in PROFILES:
        raise ValidationError({"slice_profile": f"Choose one of {', '.join(PROFILES)}."})
    gpus_per_node(gpu_model)
    return count * PROFILES[profile]


def _request(allocation: Allocation) -> Request:
    return Request(
        model=allocation.gpu_model,
        count=allocation.count,
        shape=allocation.shape,
        topology=allocation.topology,
        required=allocation.topology_required,
        profile=allocation.slice_profile,
    )


def _lock(allocation: Allocation) -> Allocation:
    """The allocation's model lock, then its row (always in that order)."""
    lock_model(Allocation.objects.values_list("gpu_model", flat=True).get(pk=allocation.pk))
    return Allocation.objects.select_for_update().get(pk=allocation.pk)


def lock_model(gpu_model: str) -> None:
    """Serialise capacity changes of one GPU model until the transaction ends. Requests for
    different models run in parallel; the exclusion constraint still guards every booking."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [zlib.crc32(gpu_model.encode())])


def _is_conflict(error: DatabaseError) -> bool:
    """An exclusion violation (23P01) or deadlock (40P01): someone booked first; try again."""
    return getattr(error.__cause__, "sqlstate", None) in ("23P01", "40P01")


def _commit_placement(allocation: Allocation, rows, start: datetime, end: datetime | None) -> None:
    period = DateTimeTZRange(start, end, "[)")
    GpuBooking.objects.bulk_create(
        [
            GpuBooking(
                allocation=allocation, node_id=node_id, gpu_id=gpu_id,
                units=NumericRange(first, first + count), period=period,
            )
            for node_id, gpu_id, first, count in sorted(rows, key=lambda r: r[1])
        ]
    )  # fmt: skip


def place(
    *, allocation: Allocation, now: datetime, actor: Actor, placement_for=None
) -> Placement | None:
    """Book capacity for `allocation` (locked, in the caller's transaction). `placement_for`,
    given a snapshot, returns the placement to try (default: the allocation's own request).
    Returns the placement, or None when it does not fit now."""
    start = max(allocation.starts_at, now)
    end = allocation.ends_at or (
        start + timedelta(seconds=allocation.lease_seconds) if allocation.lease_seconds else None
    )
    choose = placement_for or (lambda snap: snap.place(_request(allocation)))
    for _ in range(PLACE_ATTEMPTS):
        snap = load_snapshot(gpu_model=allocation.gpu_model, start=start, end=end)
        placement = choose(snap)
        if placement is None:
            return None
        try:
            with transaction.atomic():
                _commit_placement(allocation, booking_rows(snap, placement), start, end)
        except DatabaseError as error:
            if not _is_conflict(error):
                raise
            continue  # another request took some of these GPUs first: look again
        allocation.starts_at, allocation.ends_at = start, end
        allocation.placed_at = now
        allocation.save(update_fields=["starts_at", "ends_at", "placed_at"])
        return placement
    return None


def _nodes_of(allocation: Allocation) -> list[Node]:
    return list(Node.objects.filter(bookings__allocation=allocation).distinct().order_by("pk"))


def _hand_nodes(nodes: list[Node], *, to: Organization | None, actor: Actor) -> None:
    """Whole nodes change hands: allocated to a tenant, or back to available."""
    before = [snapshot(node) for node in nodes]
    for node in nodes:
        locked = Node.objects.select_for_update().get(pk=node.pk)
        target = NodeState.ALLOCATED if to else NodeState.AVAILABLE
        if locked.state != target:
            node_transition(node=locked, to=target, actor=actor.label)
        locked.organization = to
        locked.save(update_fields=["organization", "updated_at"])
        node.state, node.organization = locked.state, to
    change_records_bulk(actor=actor, updated=list(zip(before, nodes, strict=True)))


def activate(*, allocation: Allocation, now: datetime, actor: Actor) -> None:
    if allocation.state == A.QUEUED or allocation.state == A.REQUESTED:
        allocation_transition(allocation=allocation, to=A.PLACED, actor=actor.label)
    if allocation.starts_at <= now and allocation.state == A.PLACED:
        allocation_transition(allocation=allocation, to=A.ACTIVE, actor=actor.label)
        if allocation.shape == Allocation.Shape.NODE and allocation.reservation_id is None:
            _hand_nodes(_nodes_of(allocation), to=allocation.organization, actor=actor)
    allocation.queue_position = allocation.estimated_start = None
    allocation.save(update_fields=["queue_position", "estimated_start"])


@transaction.atomic
def allocation_request(
    *,
    organization: Organization,
    shape: str,
    gpu_model: str,
    count: int,
    actor: Actor,
    topology: str = Allocation.Topology.ANY,
    topology_required: bool = True,
    slice_profile: str = "",
    priority: int = 0,
    lease: timedelta | None = None,
    starts_at: datetime | None = None,
    now: datetime | None = None,
) -> Allocation:
    """Ask for capacity: refused over quota; placed now if it fits; queued otherwise."""
    now = now or timezone.now()
    if count < 1:
        raise ValidationError({"count": "Ask for at least one."})
    if topology not in TOPOLOGIES:
        raise ValidationError({"topology": f"Choose one of {', '.join(TOPOLOGIES)}."})
    units = _units(shape, gpu_model, count, slice_profile)
    start = max(starts_at or now, now)
    end = start + lease if lease else None
    lock_model(gpu_model)  # also makes the quota check and the booking one step
    quota_check(
        organization=organization, gpu_model=gpu_model, gpu_units=units, starts_at=start,
        ends_at=end, now=now,
    )  # fmt: skip
    allocation = Allocation.objects.create(
        organization=organization, shape=shape, gpu_model=gpu_model, count=count,
        slice_profile=slice_profile if shape == Allocation.Shape.SLICE else "", gpu_units=units,
        topology=topology, topology_required=topology_required, priority=priority,
        starts_at=start, ends_at=end, lease_seconds=int(lease.total_seconds()) if lease else None,
        created_by=actor.user,
    )  # fmt: skip
    from fabric.services.queue import queue_estimate, queue_process

    waiting = Allocation.objects.filter(state=A.QUEUED, gpu_model=gpu_model).exists()
    if not waiting and place(allocation=allocation, now=now, actor=actor):
        activate(allocation=allocation, now=now, actor=actor)
        return allocation
    # Others are waiting (or it does not fit): join the queue, whose order and backfill rules
    # decide whether it may start now.
    allocation_transition(allocation=allocation, to=A.QUEUED, actor=actor.label)
    if waiting:
        queue_process(gpu_model=gpu_model, now=now)
    else:
        queue_estimate(gpu_model=gpu_model, now=now)
    allocation.refresh_from_db()
    return allocation


def _end_bookings(allocation: Allocation, now: datetime, nodes: list[int] | None = None) -> None:
    bookings = allocation.bookings.all()
    if nodes is not None:
        bookings = bookings.filter(node_id__in=nodes)
    for booking in bookings:
        if booking.period.lower >= now:
            booking.delete()
        else:
            booking.period = DateTimeTZRange(booking.period.lower, now, "[)")
            booking.save(update_fields=["period"])


def _on_commit_process_queue(gpu_model: str) -> None:
    def run() -> None:
        from fabric.tasks import queue_process

        queue_process.delay(gpu_model)

    transaction.on_commit(run)


@transaction.atomic
def allocation_release(
    *, allocation: Allocation, actor: Actor, now: datetime | None = None, reason: str = ""
) -> Allocation:
    """Give the capacity back now (bookings end; whole nodes return to available)."""
    now = now or timezone.now()
    allocation = _lock(allocation)
    if allocation.state in (A.RELEASED, A.CANCELLED, A.FAILED):
        return allocation
    if allocation.state in (A.REQUESTED, A.QUEUED):
        allocation_transition(
            allocation=allocation, to=A.CANCELLED, actor=actor.label, detail=reason
        )
        return allocation
    nodes = _nodes_of(allocation) if allocation.shape == Allocation.Shape.NODE else []
    if allocation.state in (A.ACTIVE, A.EXPIRING, A.SWAPPING):
        allocation_transition(
            allocation=allocation, to=A.RECLAIMING, actor=actor.label, detail=reason
        )
    _end_bookings(allocation, now)
    allocation_transition(allocation=allocation, to=A.RELEASED, actor=actor.label, detail=reason)
    allocation.released_at = now
    allocation.save(update_fields=["released_at"])
    held = [n for n in nodes if n.state == NodeState.ALLOCATED]
    if held:
        _hand_nodes(held, to=None, actor=actor)
    _on_commit_process_queue(allocation.gpu_model)
    return allocation


@transaction.atomic
def allocation_extend(
    *, allocation: Allocation, ends_at: datetime | None, actor: Actor, now: datetime | None = None
) -> Allocation:
    """Move the end of a lease later (None: open-ended) if the capacity is free that long."""
    now = now or timezone.now()
    allocation = _lock(allocation)
    if allocation.state not in (A.ACTIVE, A.EXPIRING, A.PLACED):
        raise ValidationError(
            f"A {allocation.get_state_display().lower()} lease cannot be extended."
        )
    if allocation.ends_at is None or (ends_at is not None and ends_at <= allocation.ends_at):
        raise ValidationError({"ends_at": "Choose an end later than the current one."})
    quota_check(
        organization=allocation.organization, gpu_model=allocation.gpu_model,
        gpu_units=allocation.gpu_units, starts_at=allocation.ends_at, ends_at=ends_at, now=now,
    )  # fmt: skip
    try:
        with transaction.atomic():
            for booking in allocation.bookings.select_for_update():
                booking.period = DateTimeTZRange(booking.period.lower, ends_at, "[)")
                booking.save(update_fields=["period"])
    except DatabaseError as error:
        if not _is_conflict(error):
            raise
        raise CapacityConflict(
            "The capacity is booked by someone else before that time; try a shorter extension."
        ) from error
    allocation.ends_at, allocation.warned_at = ends_at, None
    allocation.save(update_fields=["ends_at", "warned_at"])
    if allocation.state == A.EXPIRING:
        allocation_transition(
            allocation=allocation, to=A.ACTIVE, actor=actor.label, detail="extended"
        )
    return allocation


@transaction.atomic
def allocation_grow(
    *, allocation: Allocation, nodes: int, actor: Actor, now: datetime | None = None
) -> Allocation:
    """Add whole nodes under the allocation's topology requirement (same leaf, group, ...)."""
    now = now or timezone.now()
    allocation = _lock(allocation)
    if allocation.shape != Allocation.Shape.NODE or allocation.state not in (A.ACTIVE, A.PLACED):
        raise ValidationError("Only placed or active whole-node allocations grow.")
    per_node = allocation.gpu_units // allocation.count
    quota_check(
        organization=allocation.organization, gpu_model=allocation.gpu_model,
        gpu_units=per_node * nodes, starts_at=now, ends_at=allocation.ends_at, now=now,
    )  # fmt: skip
    level = TOPOLOGIES[allocation.topology]
    anywhere = level >= len(LEVELS) - 1 or not allocation.topology_required
    if not anywhere:
        anchor = _nodes_of(allocation)[0].pk
        states = (NodeState.ALLOCATED, NodeState.AVAILABLE)
        source = CapacitySource(gpu_model=allocation.gpu_model, start=now, end=now, states=states)
        domain = source.at(now, now).nodes[anchor].domains[level]

    def grown(snap):
        if anywhere:
            return snap.place(Request(allocation.gpu_model, nodes, topology="any"))
        return snap.place_within(allocation.gpu_model, nodes, level, domain)

    started_at = allocation.starts_at
    allocation.starts_at = max(allocation.starts_at, now)
    placement = place(allocation=allocation, now=now, actor=actor, placement_for=grown)
    if placement is None:
        raise CapacityConflict(
            f"No {nodes} free {allocation.gpu_model} node(s) within the allocation's "
            f"{allocation.get_topology_display().lower()} domain right now."
        )
    allocation.starts_at = started_at
    allocation.count += nodes
    allocation.gpu_units += per_node * nodes
    allocation.save(update_fields=["starts_at", "count", "gpu_units"])
    if allocation.state == A.ACTIVE:
        added = list(Node.objects.filter(pk__in=placement.node_ids))
        _hand_nodes(added, to=allocation.organization, actor=actor)
    return allocation


@transaction.atomic
def allocation_shrink(
    *, allocation: Allocation, nodes: int, actor: Actor, now: datetime | None = None
) -> Allocation:
    """Give back `nodes` whole nodes (the most recently added) and keep the rest."""
    now = now or timezone.now()
    allocation = _lock(allocation)
    if allocation.shape != Allocation.Shape.NODE or not 0 < nodes < allocation.count:
        raise ValidationError({"nodes": f"Shrink by 1 to {allocation.count - 1} node(s)."})
    held = _nodes_of(allocation)
    leaving = sorted(held, key=lambda n: -n.pk)[:nodes]
    _end_bookings(allocation, now, nodes=[n.pk for n in leaving])
    per_node = allocation.gpu_units // allocation.count
    allocation.count -= nodes
    allocation.gpu_units -= per_node * nodes
    allocation.save(update_fields=["count", "gpu_units"])
    held_now = [n for n in leaving if n.state == NodeState.ALLOCATED]
    if held_now:
        _hand_nodes(held_now, to=None, actor=actor)
    _on_commit_process_queue(allocation.gpu_model)
    return allocation


def _warn(allocation: Allocation) -> None:
    owners = Membership.objects.filter(
        organization_id=allocation.organization_id, role__in=["owner", "admin"]
    ).values_list("user__email", flat=True)
    ends = f"{allocation.ends_at:%Y-%m-%d %H:%M} UTC"
    message = (
        f"Your lease of {allocation.count} {allocation.get_shape_display().lower()} of "
        f"{allocation.gpu_model} ends at {ends}. Extend it from the portal to keep it; at that "
        "time the capacity is reclaimed and whatever runs on it is stopped."
    )
    send_mail(
        subject=f"Your {allocation.gpu_model} lease ends at {ends}",
        message=message,
        from_email=None,
        recipient_list=list(owners),
    )


def lease_sweep(*, now: datetime | None = None, warning: timedelta = EXPIRY_WARNING) -> dict:
    """Start placed leases whose time has come, warn those about to end, and reclaim those
    that ended. Safe to run at any interval and twice."""
    now = now or timezone.now()
    actor = Actor.system("task")
    counts = {"started": 0, "warned": 0, "reclaimed": 0}
    for pk in Allocation.objects.filter(state=A.PLACED, starts_at__lte=now).values_list(
        "pk", flat=True
    ):
        with transaction.atomic():
            allocation = Allocation.objects.select_for_update().get(pk=pk)
            if allocation.state == A.PLACED:
                activate(allocation=allocation, now=now, actor=actor)
                counts["started"] += 1
    expiring = Allocation.objects.filter(
        state=A.ACTIVE, ends_at__lte=now + warning, ends_at__gt=now, warned_at=None,
        reservation=None,
    )  # fmt: skip
    for pk in expiring.values_list("pk", flat=True):
        with transaction.atomic():
            allocation = Allocation.objects.select_for_update().get(pk=pk)
            if allocation.state != A.ACTIVE or allocation.warned_at:
                continue
            allocation_transition(
                allocation=allocation, to=A.EXPIRING, actor=actor.label,
                detail=f"ends at {allocation.ends_at:%Y-%m-%d %H:%M} UTC",
            )  # fmt: skip
            allocation.warned_at = now
            allocation.save(update_fields=["warned_at"])
            transaction.on_commit(lambda a=allocation: _warn(a))
            counts["warned"] += 1
    ended = Allocation.objects.filter(state__in=HOLDING, ends_at__lte=now).exclude(
        state=A.RECLAIMING
    )
    for pk in ended.values_list("pk", flat=True):
        allocation = allocation_release(
            allocation=Allocation(pk=pk), actor=actor, now=now, reason="lease ended"
        )
        allocation_reclaimed.send(sender=Allocation, allocation=allocation)
        counts["reclaimed"] += 1
    return counts


@transaction.atomic
def allocation_deadline(
    *, allocation: Allocation, ends_at: datetime, actor: Actor, reason: str = ""
) -> Allocation:
    """Bring a lease's end forward (never later): its bookings end at `ends_at`, and the lease
    sweep warns before it and reclaims at it, as for any lease."""
    allocation = _lock(allocation)
    if allocation.state not in (A.PLACED, A.ACTIVE, A.EXPIRING):
        return allocation
    if allocation.ends_at is not None and allocation.ends_at <= ends_at:
        return allocation
    for booking in allocation.bookings.select_for_update():
        end = max(ends_at, booking.period.lower)
        booking.period = DateTimeTZRange(booking.period.lower, end, "[)")
        booking.save(update_fields=["period"])
    allocation.ends_at, allocation.warned_at = ends_at, None
    allocation.detail = reason[:300]
    allocation.save(update_fields=["ends_at", "warned_at", "detail"])
    return allocation
