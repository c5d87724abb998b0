"""Allocations: request (quota, then place or queue), release, extend, grow, shrink, and the
lease sweep. Decisions come from an in-memory snapshot (fabric.capacity); the database's
exclusion constraint checks each commit, so a stale snapshot only costs another try."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import DatabaseError, connection, transaction
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange
from django.db.models import Count
from django.dispatch import Signal
from django.utils import timezone

from fabric.capacity.engine import LEVELS, PROFILES, SLICE_UNITS, TOPOLOGIES, Request
from fabric.capacity.loader import CapacitySource, capacity_unbooked
from fabric.models import GPU, Allocation, AllocationState, Node, NodeState
from fabric.services.placement import (
    activate,
    hand_nodes,
    is_conflict,
    lock_allocation,
    lock_model,
    nodes_of,
    place,
)
from fabric.services.queue import queue_estimate, queue_process
from fabric.services.quotas import quota_check, quotas_for
from fabric.states import HOLDING, allocation_transition
from portal.celery import task
from portal.models import Membership, Organization
from portal.services.audit import Actor

A = AllocationState
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


def _model_exists(gpu_model: str) -> None:
    if not GPU.objects.filter(node__gpu_model=gpu_model).exists():
        raise ValidationError({"gpu_model": f"No {gpu_model} GPUs are in the inventory."})


def _units(shape: str, gpu_model: str, count: int, profile: str) -> int:
    if shape == Allocation.Shape.NODE:
        return count * gpus_per_node(gpu_model) * SLICE_UNITS
    if shape == Allocation.Shape.GPU:
        _model_exists(gpu_model)
        return count * SLICE_UNITS
    if profile not in PROFILES:
        raise ValidationError({"slice_profile": f"Choose one of {', '.join(PROFILES)}."})
    _model_exists(gpu_model)
    return count * PROFILES[profile]


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
    site: str = "",
    needs_bmc: bool = False,
) -> Allocation:
    """Ask for capacity: refused over quota; placed now if it fits; queued otherwise.

    `site` (whole nodes only) places the nodes at that site, now or from the queue (the
    allocation records it). `needs_bmc` (whole nodes only) takes only nodes with a BMC: bare
    metal, whose power and boot the platform drives."""
    now = now or timezone.now()
    if count < 1:
        raise ValidationError({"count": "Ask for at least one."})
    if site and shape != Allocation.Shape.NODE:
        raise ValidationError({"site": "Only whole nodes are placed at a chosen site."})
    if needs_bmc and shape != Allocation.Shape.NODE:
        raise ValidationError({"shape": "Only whole nodes are sold as bare metal."})
    if topology not in TOPOLOGIES:
        raise ValidationError({"topology": f"Choose one of {', '.join(TOPOLOGIES)}."})
    units = _units(shape, gpu_model, count, slice_profile)
    start = max(starts_at or now, now)
    end = start + lease if lease else None
    quotas = quotas_for(organization=organization, gpu_model=gpu_model)
    # Everything that needs no lock comes first: the model's lock is held until commit, and
    # every request for the model waits for it.
    allocation = Allocation.objects.create(
        organization=organization,
        shape=shape,
        gpu_model=gpu_model,
        count=count,
        slice_profile=slice_profile if shape == Allocation.Shape.SLICE else "",
        gpu_units=units,
        topology=topology,
        topology_required=topology_required,
        site=site,
        needs_bmc=needs_bmc,
        priority=priority,
        starts_at=start,
        ends_at=end,
        lease_seconds=int(lease.total_seconds()) if lease else None,
        created_by=actor.user,
    )
    lock_model(gpu_model)  # also makes the quota check and the booking one step
    quota_check(
        organization=organization,
        gpu_model=gpu_model,
        gpu_units=units,
        starts_at=start,
        ends_at=end,
        now=now,
        quotas=quotas,
    )
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
    """The allocation's bookings (on `nodes`, or all) end at `now`: those not started yet go,
    running ones are cut at `now`, and one that already ended keeps its end. Two statements,
    whatever the number of GPUs."""
    params = {"allocation": allocation.pk, "now": now, "nodes": nodes}
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM fabric_gpubooking WHERE allocation_id = %(allocation)s"
            " AND (%(nodes)s::bigint[] IS NULL OR node_id = ANY(%(nodes)s::bigint[]))"
            " AND lower(period) >= %(now)s RETURNING id",
            params,
        )
        deleted = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            "UPDATE fabric_gpubooking SET period = tstzrange(lower(period), %(now)s, '[)')"
            " WHERE allocation_id = %(allocation)s"
            " AND (%(nodes)s::bigint[] IS NULL OR node_id = ANY(%(nodes)s::bigint[]))"
            " AND lower(period) < %(now)s AND (upper_inf(period) OR upper(period) > %(now)s)"
            " RETURNING id",
            params,
        )
        ended = [(row[0], now) for row in cursor.fetchall()]
    capacity_unbooked(gpu_model=allocation.gpu_model, ended=ended, deleted=deleted)


def _on_commit_process_queue(gpu_model: str) -> None:
    """Start what waits for this model once the transaction commits (the caller holds the
    model's lock, so nothing can join the queue unseen before then)."""
    if not Allocation.objects.filter(state=A.QUEUED, gpu_model=gpu_model).exists():
        return

    transaction.on_commit(lambda: task("fabric.tasks.queue_process").delay(gpu_model))


@transaction.atomic
def allocation_release(
    *, allocation: Allocation, actor: Actor, now: datetime | None = None, reason: str = ""
) -> Allocation:
    """Give the capacity back now (bookings end; whole nodes return to available)."""
    now = now or timezone.now()
    allocation = lock_allocation(allocation)
    if allocation.state in (A.RELEASED, A.CANCELLED, A.FAILED):
        return allocation
    if allocation.state in (A.REQUESTED, A.QUEUED):
        allocation_transition(
            allocation=allocation, to=A.CANCELLED, actor=actor.label, detail=reason
        )
        return allocation
    nodes = nodes_of(allocation) if allocation.shape == Allocation.Shape.NODE else []
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
        hand_nodes(held, to=None, actor=actor)
    _on_commit_process_queue(allocation.gpu_model)
    return allocation


@transaction.atomic
def allocation_extend(
    *, allocation: Allocation, ends_at: datetime | None, actor: Actor, now: datetime | None = None
) -> Allocation:
    """Move the end of a lease later (None: open-ended) if the capacity is free that long."""
    now = now or timezone.now()
    allocation = lock_allocation(allocation)
    if allocation.state not in (A.ACTIVE, A.EXPIRING, A.PLACED):
        raise ValidationError(
            f"A {allocation.get_state_display().lower()} lease cannot be extended."
        )
    if allocation.ends_at is None or (ends_at is not None and ends_at <= allocation.ends_at):
        raise ValidationError({"ends_at": "Choose an end later than the current one."})
    quota_check(
        organization=allocation.organization,
        gpu_model=allocation.gpu_model,
        gpu_units=allocation.gpu_units,
        starts_at=allocation.ends_at,
        ends_at=ends_at,
        now=now,
    )
    try:
        with transaction.atomic():
            for booking in allocation.bookings.select_for_update():
                booking.period = DateTimeTZRange(booking.period.lower, ends_at, "[)")
                booking.save(update_fields=["period"])
    except DatabaseError as error:
        if not is_conflict(error):
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
    *,
    allocation: Allocation,
    nodes: int,
    actor: Actor,
    now: datetime | None = None,
    site: str = "",
) -> Allocation:
    """Add whole nodes under the allocation's topology requirement (same leaf, group, ...),
    at `site` (or the allocation's) when one is named."""
    now = now or timezone.now()
    allocation = lock_allocation(allocation)
    if allocation.shape != Allocation.Shape.NODE or allocation.state not in (A.ACTIVE, A.PLACED):
        raise ValidationError("Only placed or active whole-node allocations grow.")
    per_node = allocation.gpu_units // allocation.count
    quota_check(
        organization=allocation.organization,
        gpu_model=allocation.gpu_model,
        gpu_units=per_node * nodes,
        starts_at=now,
        ends_at=allocation.ends_at,
        now=now,
    )
    level = TOPOLOGIES[allocation.topology]
    anywhere = level >= len(LEVELS) - 1 or not allocation.topology_required
    if not anywhere:
        anchor = nodes_of(allocation)[0].pk
        states = (NodeState.ALLOCATED, NodeState.AVAILABLE)
        source = CapacitySource(gpu_model=allocation.gpu_model, start=now, end=now, states=states)
        domain = source.at(now, now).nodes[anchor].domains[level]

    def grown(snap):
        bmc = allocation.needs_bmc
        if anywhere:
            where = site or allocation.site
            return snap.place(
                Request(allocation.gpu_model, nodes, topology="any", bmc=bmc, site=where)
            )
        return snap.place_within(allocation.gpu_model, nodes, level, domain, bmc=bmc)

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
        hand_nodes(added, to=allocation.organization, actor=actor)
    return allocation


@transaction.atomic
def allocation_shrink(
    *,
    allocation: Allocation,
    nodes: int,
    actor: Actor,
    now: datetime | None = None,
    node_ids: list[int] | None = None,
) -> Allocation:
    """Give back `nodes` whole nodes (those of `node_ids`, else the highest ids) and keep the
    rest."""
    now = now or timezone.now()
    allocation = lock_allocation(allocation)
    if allocation.shape != Allocation.Shape.NODE or not 0 < nodes < allocation.count:
        raise ValidationError({"nodes": f"Shrink by 1 to {allocation.count - 1} node(s)."})
    held = nodes_of(allocation)
    if node_ids is not None:
        leaving = [n for n in held if n.pk in set(node_ids)]
        if len(leaving) != nodes:
            raise ValidationError({"nodes": "Those nodes are not all held by the allocation."})
    else:
        leaving = sorted(held, key=lambda n: -n.pk)[:nodes]
    _end_bookings(allocation, now, nodes=[n.pk for n in leaving])
    per_node = allocation.gpu_units // allocation.count
    allocation.count -= nodes
    allocation.gpu_units -= per_node * nodes
    allocation.save(update_fields=["count", "gpu_units"])
    held_now = [n for n in leaving if n.state == NodeState.ALLOCATED]
    if held_now:
        hand_nodes(held_now, to=None, actor=actor)
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
        state=A.ACTIVE,
        ends_at__lte=now + warning,
        ends_at__gt=now,
        warned_at=None,
        reservation=None,
    )
    for pk in expiring.values_list("pk", flat=True):
        with transaction.atomic():
            allocation = Allocation.objects.select_for_update().get(pk=pk)
            if allocation.state != A.ACTIVE or allocation.warned_at:
                continue
            allocation_transition(
                allocation=allocation,
                to=A.EXPIRING,
                actor=actor.label,
                detail=f"ends at {allocation.ends_at:%Y-%m-%d %H:%M} UTC",
            )
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
    allocation = lock_allocation(allocation)
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
