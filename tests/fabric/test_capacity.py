"""Capacity on real PostgreSQL: placement, races, topology, queue, quotas, leases, reservations,
elastic allocations and availability. Time is passed in (`now=`), so the clock is the test's."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.db import IntegrityError, connection, transaction
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange, NumericRange
from django.test import override_settings
from django.utils import timezone

import fabric.tasks
from fabric.models import Allocation, GpuBooking, Node, NodeState, Quota
from fabric.selectors.capacity import availability
from fabric.services import allocations as alloc
from fabric.services.cleaning import node_clean_finish
from fabric.services.queue import queue_process
from fabric.services.quotas import QuotaExceeded
from fabric.services.reservations import NoCapacity, reservation_book, reservation_claim
from fabric.states import NODE_TRANSITIONS, TransitionError, node_transition
from fabric.testbed.fleet import fleet_generate
from portal.celery import app as celery_app
from portal.embedded import free_port
from portal.services.audit import Actor
from tests.portal.factories import member, organization_of

H100 = "NVIDIA H100 80GB HBM3"
T0 = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)
SYSTEM = Actor.system("task")


@pytest.fixture
def fleet(db):
    """One site: pods p01 and p04 of H100 (32 nodes, two 16-node leaves each), p02 A100,
    p03 L40S."""
    fleet_generate(sites=1, nodes_per_site=128, actor=SYSTEM, spare_fraction=0)
    return list(Node.objects.filter(gpu_model=H100).order_by("name"))


def _org():
    return organization_of(member())


def _request(org, count=1, now=T0, **kwargs):
    return alloc.allocation_request(
        organization=org, shape="node", gpu_model=H100, count=count, actor=SYSTEM, now=now,
        **kwargs,
    )  # fmt: skip


def _cleaned(allocation):
    """The nodes the allocation gave back were erased (fabric.services.cleaning): placeable."""
    for node in Node.objects.filter(bookings__allocation=allocation, state=NodeState.CLEANING):
        node_clean_finish(node=node, ok=True, detail="erased by hand", actor=SYSTEM)


def _leaves(allocation):
    """The InfiniBand leaf (rail 0) of each node of an allocation."""
    nodes = Node.objects.filter(bookings__allocation=allocation).distinct()
    return {
        n.interfaces.get(name="ibp0").cable_end.cable.ends.get(side="b").port.switch.name
        for n in nodes
    }


def _double_bookings() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT count(*) FROM fabric_gpubooking a JOIN fabric_gpubooking b
               ON a.gpu_id = b.gpu_id AND a.id < b.id
               AND a.units && b.units AND a.period && b.period"""
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_64_concurrent_orderers_race_for_the_last_nodes_without_a_double_booking(fleet):
    filler = _org()
    _request(filler, count=len(fleet) - 10)  # all but 10 H100 nodes are taken
    orgs = [_org() for _ in range(64)]
    results, errors = {}, []
    barrier = threading.Barrier(64)

    def order(org):
        try:
            barrier.wait()
            results[org.pk] = _request(org).state
        except Exception as exc:  # collected and asserted below
            errors.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=order, args=(org,)) for org in orgs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    states = sorted(results.values())
    assert states.count("active") == 10 and states.count("queued") == 54
    assert _double_bookings() == 0
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT node_id FROM fabric_gpubooking
               WHERE period @> %s::timestamptz GROUP BY node_id
               HAVING count(DISTINCT allocation_id) > 1""",
            [T0],
        )
        assert cursor.fetchall() == []
    assert not Node.objects.filter(gpu_model=H100, state=NodeState.AVAILABLE).exists()


@pytest.mark.django_db
def test_a_same_leaf_request_stays_in_one_leaf_and_a_preference_widens_only_when_needed(fleet):
    first = _request(_org(), count=4, topology="same-leaf")
    assert first.state == "active" and len(_leaves(first)) == 1
    # Leave every leaf with fewer than 4 free nodes: each of the 4 leaves holds 16 (or 12).
    for leaf_size in (12, 13, 13, 13):
        _request(_org(), count=leaf_size, topology="same-leaf")
    required = _request(_org(), count=4, topology="same-leaf")
    assert required.state == "queued"
    preferred = _request(_org(), count=4, topology="same-leaf", topology_required=False)
    assert preferred.state == "active" and len(_leaves(preferred)) > 1


@pytest.mark.django_db
def test_over_quota_requests_are_refused_naming_the_quota_and_the_excess(fleet):
    org = _org()
    Quota.objects.create(organization=org, gpu_model=H100, max_gpus=16)
    with pytest.raises(QuotaExceeded) as refused:
        _request(org, count=3)
    assert refused.value.messages == [
        f"Over the quota of 16 concurrent {H100} GPUs: you hold 0 and asked for 24, 8 over."
    ]
    _request(org, count=2)
    with pytest.raises(QuotaExceeded, match="you hold 16 and asked for 8, 8 over"):
        _request(org, count=1)
    hours = _org()
    Quota.objects.create(organization=hours, gpu_hours_per_month=100)
    with pytest.raises(QuotaExceeded) as refused:
        alloc.allocation_request(
            organization=hours, shape="gpu", gpu_model=H100, count=2, actor=SYSTEM, now=T0,
            lease=timedelta(hours=60),
        )  # fmt: skip
    assert "quota of 100 GPU-hours a month" in refused.value.messages[0]
    assert "needs 120.0, 20.0 over" in refused.value.messages[0]
    assert not Allocation.objects.filter(organization=hours).exists()


@pytest.mark.django_db
def test_the_queue_serves_the_organization_holding_less_first(fleet):
    big, small = _org(), _org()
    held = [_request(big, count=1) for _ in range(len(fleet))]
    waiting_big = _request(big, now=T0 + timedelta(minutes=1))
    waiting_small = _request(small, now=T0 + timedelta(minutes=2))
    assert (waiting_big.state, waiting_small.state) == ("queued", "queued")
    waiting_small.refresh_from_db()
    assert waiting_small.queue_position == 1  # fair share outranks arrival order
    alloc.allocation_release(allocation=held[0], actor=SYSTEM, now=T0 + timedelta(hours=1))
    queue_process(gpu_model=H100, now=T0 + timedelta(hours=1))
    waiting_small.refresh_from_db()
    assert waiting_small.state == "queued"  # the node given back is cleaning: not placeable
    _cleaned(held[0])
    queue_process(gpu_model=H100, now=T0 + timedelta(hours=1))
    waiting_big.refresh_from_db()
    waiting_small.refresh_from_db()
    assert (waiting_small.state, waiting_big.state) == ("active", "queued")


@pytest.mark.django_db
def test_a_release_starts_what_waits_through_the_queue_task_once_cleaned_and_committed(
    fleet, django_capture_on_commit_callbacks
):
    assert fabric.tasks.queue_process.name in celery_app.tasks
    now = timezone.now()
    held = _request(_org(), count=len(fleet), now=now)
    waiting = _request(_org(), now=now)
    assert waiting.state == "queued"
    alloc.allocation_release(allocation=held, actor=SYSTEM)
    assert not Node.objects.filter(state=NodeState.AVAILABLE, gpu_model=H100).exists()
    conf = celery_app.conf
    before = conf.task_always_eager, conf.task_eager_propagates
    conf.task_always_eager = conf.task_eager_propagates = True  # the task runs in this process
    try:
        with django_capture_on_commit_callbacks(execute=True):
            _cleaned(held)
    finally:
        conf.task_always_eager, conf.task_eager_propagates = before
    waiting.refresh_from_db()
    assert waiting.state == "active"


@pytest.mark.django_db
def test_backfill_starts_small_work_only_when_the_head_is_not_delayed(fleet):
    org = _org()
    # Everything busy: 2 nodes end in 2 h, the rest are open-ended; 2 nodes stay free.
    ending = _request(org, count=2, lease=timedelta(hours=2))
    _request(org, count=len(fleet) - 4)
    head = _request(_org(), count=4, now=T0 + timedelta(seconds=1))
    head.refresh_from_db()
    assert head.state == "queued" and head.estimated_start == T0 + timedelta(hours=2)
    # Arrivals while someone waits go through the queue: only what cannot delay the head starts.
    short = _request(_org(), lease=timedelta(hours=1), now=T0 + timedelta(seconds=2))
    long = _request(_org(), lease=timedelta(hours=5), now=T0 + timedelta(seconds=3))
    forever = _request(_org(), now=T0 + timedelta(seconds=4))
    assert (short.state, long.state, forever.state) == ("active", "queued", "queued")
    assert queue_process(gpu_model=H100, now=T0 + timedelta(seconds=5)) == {
        "started": 0, "backfilled": 0,
    }  # fmt: skip
    head.refresh_from_db()
    assert head.estimated_start == T0 + timedelta(hours=2) and head.queue_position == 1
    assert alloc.lease_sweep(now=T0 + timedelta(hours=2))["reclaimed"] == 2
    _cleaned(ending)
    _cleaned(short)
    queue_process(gpu_model=H100, now=T0 + timedelta(hours=2))
    head.refresh_from_db()
    assert head.state == "active"


@pytest.mark.django_db
def test_a_lease_is_warned_then_reclaimed_on_the_clock(fleet, django_capture_on_commit_callbacks):
    owner = member()
    org = organization_of(owner)
    lease = _request(org, count=2, lease=timedelta(hours=2))
    nodes = list(Node.objects.filter(bookings__allocation=lease).distinct())
    assert {n.state for n in nodes} == {NodeState.ALLOCATED}
    told = []

    def receiver(allocation, **kwargs):
        told.append(allocation.pk)

    alloc.allocation_reclaimed.connect(receiver)
    assert alloc.lease_sweep(now=T0 + timedelta(minutes=30))["warned"] == 0
    with django_capture_on_commit_callbacks(execute=True):
        counts = alloc.lease_sweep(now=T0 + timedelta(hours=1, minutes=30))
    lease.refresh_from_db()
    assert counts["warned"] == 1 and lease.state == "expiring"
    assert (
        mail.outbox[-1].to == [owner.email] and "ends at 2026-11-10 11:00" in mail.outbox[-1].body
    )
    assert alloc.lease_sweep(now=T0 + timedelta(hours=1, minutes=45))["warned"] == 0  # once
    alloc.lease_sweep(now=T0 + timedelta(hours=2))
    alloc.allocation_reclaimed.disconnect(receiver)
    lease.refresh_from_db()
    assert lease.state == "released" and told == [lease.pk]
    assert {b.period.upper for b in lease.bookings.all()} == {T0 + timedelta(hours=2)}
    assert set(
        Node.objects.filter(pk__in=[n.pk for n in nodes]).values_list("state", flat=True)
    ) == {NodeState.CLEANING}


@pytest.mark.django_db
def test_a_lease_extends_while_capacity_allows(fleet):
    lease = alloc.allocation_request(
        organization=_org(), shape="gpu", gpu_model=H100, count=1, actor=SYSTEM, now=T0,
        lease=timedelta(hours=2),
    )  # fmt: skip
    alloc.allocation_extend(allocation=lease, ends_at=T0 + timedelta(hours=4), actor=SYSTEM, now=T0)
    booking = lease.bookings.get()
    assert booking.period.upper == T0 + timedelta(hours=4)
    other = Allocation.objects.create(
        organization=_org(), shape="gpu", gpu_model=H100, count=1, gpu_units=7, starts_at=T0,
        state="placed",
    )  # fmt: skip
    GpuBooking.objects.create(
        allocation=other, gpu=booking.gpu, node=booking.node, units=NumericRange(0, 7),
        period=DateTimeTZRange(T0 + timedelta(hours=5), None),
    )  # fmt: skip
    with pytest.raises(alloc.CapacityConflict, match="booked by someone else"):
        alloc.allocation_extend(
            allocation=lease, ends_at=T0 + timedelta(hours=6), actor=SYSTEM, now=T0
        )
    lease.refresh_from_db()
    assert lease.ends_at == T0 + timedelta(hours=4)


@pytest.mark.django_db
def test_the_database_refuses_overlapping_slices_of_one_gpu(fleet):
    first = alloc.allocation_request(
        organization=_org(), shape="slice", gpu_model=H100, count=1, slice_profile="3g",
        actor=SYSTEM, now=T0,
    )  # fmt: skip
    second = alloc.allocation_request(
        organization=_org(), shape="slice", gpu_model=H100, count=1, slice_profile="1g",
        actor=SYSTEM, now=T0,
    )  # fmt: skip
    a, b = first.bookings.get(), second.bookings.get()
    assert a.gpu_id == b.gpu_id  # packed onto the same GPU
    assert (a.units.lower, a.units.upper, b.units.lower) == (0, 3, 3)
    with pytest.raises(IntegrityError), transaction.atomic():
        GpuBooking.objects.create(
            allocation=second, gpu=a.gpu, node=a.node, units=NumericRange(2, 4),
            period=DateTimeTZRange(T0, None),
        )  # fmt: skip


@pytest.mark.django_db
def test_a_reservation_holds_capacity_weekly_or_suggests_the_nearest_windows(fleet):
    org = _org()
    start = T0 + timedelta(days=1)
    reservation = reservation_book(
        organization=org, gpu_model=H100, count=16, starts_at=start,
        ends_at=start + timedelta(hours=2), weekly_occurrences=3, actor=SYSTEM, now=T0,
    )  # fmt: skip
    holds = list(reservation.holds.order_by("starts_at"))
    assert [h.starts_at for h in holds] == [start + timedelta(weeks=k) for k in range(3)]
    assert all(h.bookings.count() == 16 for h in holds)
    everything = len(fleet) * 8
    with pytest.raises(NoCapacity) as refused:
        reservation_book(
            organization=_org(), gpu_model=H100, count=everything, starts_at=start,
            ends_at=start + timedelta(hours=2), actor=SYSTEM, now=T0,
        )  # fmt: skip
    suggestions = refused.value.suggestions
    assert suggestions[0] == (start - timedelta(hours=2), start)
    assert (start + timedelta(hours=2), start + timedelta(hours=4)) in suggestions
    # An open-ended request for every H100 node now cannot take the reserved GPUs.
    assert _request(_org(), count=len(fleet)).state == "queued"


def test_a_reservations_organization_claims_its_held_gpus_and_slices_while_others_cannot(fleet):
    org = _org()
    start = T0 + timedelta(hours=1)
    reservation = reservation_book(
        organization=org, gpu_model=H100, count=1, starts_at=start,
        ends_at=start + timedelta(hours=2), actor=SYSTEM, now=T0,
    )  # fmt: skip
    hold = reservation.holds.get()
    held_gpu = hold.bookings.get().gpu_id
    assert (
        reservation_claim(
            reservation=reservation, shape="slice", slice_profile="1g", actor=SYSTEM, now=T0
        )
        is None
    )  # fmt: skip  (before the window)
    during = start + timedelta(minutes=10)
    slices = [
        reservation_claim(
            reservation=reservation, shape="slice", slice_profile="3g", actor=SYSTEM, now=during
        )
        for _ in range(3)
    ]
    assert slices[2] is None  # 3g + 3g fit in 7 units; a third does not
    for claim in slices[:2]:
        booking = claim.bookings.get()
        assert claim.state == "active" and claim.organization == org
        assert booking.gpu_id == held_gpu and booking.period.upper == start + timedelta(hours=2)
    units = sorted((b.units.lower, b.units.upper) for b in GpuBooking.objects.filter(
        gpu_id=held_gpu, period__contains=during + timedelta(minutes=1)))  # fmt: skip
    assert units == [(0, 3), (3, 6), (6, 7)]  # two claims and the hold's last unit
    assert hold.bookings.filter(period__contains=start).get().units == NumericRange(0, 7)
    one = reservation_claim(
        reservation=reservation, shape="slice", slice_profile="1g", actor=SYSTEM, now=during
    )
    assert one is not None and not hold.bookings.filter(period__contains=during).exists()
    assert _double_bookings() == 0


@pytest.mark.django_db
def test_an_allocation_grows_within_its_leaf_and_shrinks(fleet):
    lease = _request(_org(), count=2, topology="same-leaf")
    alloc.allocation_grow(allocation=lease, nodes=2, actor=SYSTEM, now=T0)
    lease.refresh_from_db()
    assert lease.count == 4 and len(_leaves(lease)) == 1
    with pytest.raises(alloc.CapacityConflict, match="within the allocation's same leaf"):
        alloc.allocation_grow(allocation=lease, nodes=13, actor=SYSTEM, now=T0)
    alloc.allocation_shrink(allocation=lease, nodes=1, actor=SYSTEM, now=T0 + timedelta(hours=1))
    lease.refresh_from_db()
    held = Node.objects.filter(state=NodeState.ALLOCATED, organization=lease.organization)
    assert lease.count == 3 and held.count() == 3 and lease.gpu_units == 3 * 8 * 7


@pytest.mark.django_db
def test_availability_is_computed_when_the_cache_cannot_be_reached(fleet):
    closed = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    caches = {"default": {**settings.CACHES["default"], "LOCATION": closed}}
    with override_settings(CACHES=caches):
        rows = {(r["gpu_model"], r["shape"]): r for r in availability(now=T0)}
    assert rows[(H100, "node")]["available_now"] == len(fleet)


@pytest.mark.django_db
def test_availability_counts_what_can_start_now_and_when_the_next_could(fleet):
    rows = {(r["gpu_model"], r["shape"]): r for r in availability(now=T0, use_cache=False)}
    assert rows[(H100, "node")]["available_now"] == len(fleet)
    assert rows[(H100, "gpu")]["available_now"] == len(fleet) * 8
    assert rows[(H100, "slice_1g")]["available_now"] == len(fleet) * 8 * 7
    _request(_org(), count=len(fleet), lease=timedelta(hours=3))
    rows = {(r["gpu_model"], r["shape"]): r for r in availability(now=T0, use_cache=False)}
    assert rows[(H100, "node")]["available_now"] == 0
    assert rows[(H100, "node")]["next_available_at"] == T0 + timedelta(hours=3)


@pytest.mark.django_db
def test_whole_nodes_given_back_are_cleaned_before_anyone_is_placed_on_them(fleet):
    assert NodeState.AVAILABLE not in NODE_TRANSITIONS[NodeState.ALLOCATED]
    assert NODE_TRANSITIONS[NodeState.CLEANING] == {NodeState.AVAILABLE, NodeState.MAINTENANCE}
    held = _request(_org(), count=len(fleet))
    nodes = list(Node.objects.filter(bookings__allocation=held).distinct().order_by("pk"))
    alloc.allocation_release(allocation=held, actor=SYSTEM)
    assert {
        (n.state, n.organization_id) for n in Node.objects.filter(pk__in=[n.pk for n in nodes])
    } == {(NodeState.CLEANING, None)}
    first = Node.objects.get(pk=nodes[0].pk)
    with pytest.raises(TransitionError):  # a node being cleaned is not handed to anyone
        node_transition(node=first, to=NodeState.ALLOCATED, actor="test")
    waiting = _request(_org())
    assert waiting.state == "queued"  # placement skips nodes in cleaning
    node_clean_finish(node=first, ok=False, detail="a disk would not erase", actor=SYSTEM)
    first.refresh_from_db()
    assert first.state == NodeState.MAINTENANCE
    assert first.events.latest("pk").detail == "cleaning failed: a disk would not erase"
    queue_process(gpu_model=H100, now=timezone.now())
    waiting.refresh_from_db()
    assert waiting.state == "queued"  # maintenance is not the pool
    second = nodes[1]
    node_clean_finish(node=second, ok=True, detail="erased", actor=SYSTEM)
    queue_process(gpu_model=H100, now=timezone.now())
    waiting.refresh_from_db()
    assert waiting.state == "active"
    assert list(Node.objects.filter(bookings__allocation=waiting).distinct()) == [second]
