"""The placement hot path: a fixed handful of queries per request, whatever the fleet, from a
per-process capacity source brought up to date under the model's lock. What another process
changed behind that source's back never leads to a double booking, a booking on a node taken
out of service, or a request queued while capacity is free."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange
from django.utils import timezone

from fabric.models import Allocation, GpuBooking, NodeState
from fabric.services import allocations as alloc
from fabric.states import node_transition
from portal.services.audit import Actor
from tests.fabric.factories import GPUFactory, NodeFactory
from tests.portal.factories import member, organization_of

pytestmark = pytest.mark.django_db
MODEL = "H100-SXM5-80GB"
SYSTEM = Actor.system("task")


@pytest.fixture
def nodes():
    """Two available nodes of eight GPUs each."""
    made = []
    for _ in range(2):
        node = NodeFactory(gpu_model=MODEL, state=NodeState.AVAILABLE)
        for index in range(8):
            GPUFactory(node=node, index=index, model=MODEL)
        made.append(node)
    return made


@pytest.fixture
def org():
    return organization_of(member())


def _gpus(org, count=1, **kwargs) -> Allocation:
    return alloc.allocation_request(
        organization=org, shape="gpu", gpu_model=MODEL, count=count, actor=SYSTEM,
        lease=timedelta(hours=1), **kwargs,
    )  # fmt: skip


def _node_of(allocation: Allocation) -> int:
    return allocation.bookings.values_list("node_id", flat=True).get()


def test_placing_a_gpu_and_releasing_eight_take_a_fixed_handful_of_queries(
    nodes, org, django_assert_max_num_queries
):
    alloc.allocation_release(allocation=_gpus(org), actor=SYSTEM)  # this process's source
    with django_assert_max_num_queries(16):
        placed = _gpus(org)
    assert placed.state == "active"
    eight = _gpus(org, count=8)
    with django_assert_max_num_queries(12):
        released = alloc.allocation_release(allocation=eight, actor=SYSTEM)
    assert released.state == "released"


def test_a_node_taken_out_of_service_after_the_source_was_loaded_is_never_booked(nodes, org):
    first = _gpus(org)
    busiest = nodes[0] if _node_of(first) == nodes[0].pk else nodes[1]
    node_transition(node=busiest, to=NodeState.CORDONED, actor="operator")
    second = _gpus(org)  # best fit would be the busiest node, now cordoned
    assert second.state == "active" and _node_of(second) != busiest.pk


def test_capacity_freed_by_another_process_is_found_before_a_request_is_queued(nodes, org):
    _gpus(org, count=16)
    # Another process releases everything: the rows go, this process's source keeps them.
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM fabric_gpubooking")
    assert _gpus(org, count=8).state == "active"


def test_a_booking_extended_by_another_process_sends_the_request_elsewhere(nodes, org):
    now = timezone.now()
    holder = _gpus(org, count=8)  # one node, for an hour
    held = _node_of_all(holder)
    _gpus(org)  # the source is loaded and knows the holder ends in an hour
    # Another process extends the holder's bookings by three hours behind the source's back.
    GpuBooking.objects.filter(allocation=holder).update(
        period=DateTimeTZRange(now, now + timedelta(hours=4), "[)")
    )
    later = _gpus(org, count=8, starts_at=now + timedelta(hours=2))
    assert later.state == "placed" and _node_of_all(later) != held
    assert _double_bookings() == 0


def _node_of_all(allocation: Allocation) -> int:
    return allocation.bookings.values_list("node_id", flat=True).distinct().get()


def _double_bookings() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT count(*) FROM fabric_gpubooking a JOIN fabric_gpubooking b
               ON a.gpu_id = b.gpu_id AND a.id < b.id
               AND a.units && b.units AND a.period && b.period"""
        )
        return cursor.fetchone()[0]
