"""GPU time is metered per second from the moment a lease is active until it ends, each hour
written once; nothing is billed for a lease that never became active."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from billing.ledger import usage_correct
from billing.models import UsageEvent
from billing.rating import charges
from catalog.metering import meter_usage, unmetered_cost
from fabric.models import Allocation
from fabric.services.allocations import allocation_release, allocation_request
from fabric.services.fleet import fleet_generate
from fabric.states import allocation_transition
from portal.services.audit import Actor
from tests.portal.factories import member, organization_of

pytestmark = pytest.mark.django_db
H100 = "NVIDIA H100 80GB HBM3"
T0 = datetime(2026, 11, 10, 9, 20, tzinfo=UTC)
SYSTEM = Actor.system("task")


@pytest.fixture
def org():
    fleet_generate(sites=1, nodes_per_site=32, actor=SYSTEM, spare_fraction=0)
    return organization_of(member())


def _node(org, now=T0):
    return allocation_request(
        organization=org, shape="node", gpu_model=H100, count=1, actor=SYSTEM, now=now
    )


def _gpu_seconds(org) -> Decimal:
    return sum(e.quantity for e in UsageEvent.objects.filter(organization=org))


def test_a_lease_is_metered_per_second_each_hour_once(org):
    lease = _node(org)
    assert meter_usage(now=T0 + timedelta(minutes=30)) == 0  # the running hour waits
    assert meter_usage(now=T0 + timedelta(hours=1, minutes=10)) == 1  # 09:20-10:00
    assert _gpu_seconds(org) == 40 * 60 * 8
    allocation_release(allocation=lease, actor=SYSTEM, now=T0 + timedelta(hours=2, minutes=10))
    assert meter_usage(now=T0 + timedelta(hours=3)) == 2  # 10:00-11:00 and 11:00-11:30
    assert meter_usage(now=T0 + timedelta(hours=4)) == 0  # nothing twice
    assert _gpu_seconds(org) == (2 * 3600 + 10 * 60) * 8
    (line,) = charges(organization=org, start=T0 - timedelta(hours=1), end=T0 + timedelta(days=1))
    assert line.amount == Decimal("43.16")  # 17.333 GPU-hours x $2.49


def test_nothing_is_billed_for_a_lease_that_never_became_usable(org):
    failed = Allocation.objects.create(
        organization=org, shape="node", gpu_model=H100, count=1, gpu_units=56, starts_at=T0,
    )  # fmt: skip
    allocation_transition(allocation=failed, to="placed", actor="test")
    allocation_transition(allocation=failed, to="failed", actor="test", detail="boot failed")
    assert meter_usage(now=T0 + timedelta(hours=5)) == 0
    assert not UsageEvent.objects.exists()


def test_time_a_node_was_not_usable_is_taken_back_by_a_correction(org):
    _node(org)
    meter_usage(now=T0 + timedelta(hours=2))
    hour = UsageEvent.objects.get(idempotency_key__endswith="T10")
    usage_correct(event=hour, quantity=-hour.quantity, reason="node unreachable 10:00-11:00")
    assert _gpu_seconds(org) == 40 * 60 * 8  # only 09:20-10:00 remains billed


def test_the_running_hour_is_estimated_live(org):
    _node(org)
    # 09:20-09:50 on 8 GPUs at $2.49 an hour
    assert unmetered_cost(organization=org, now=T0 + timedelta(minutes=30)) == Decimal("9.96")


def test_a_grown_lease_is_metered_at_each_size_for_the_time_it_had_it(org):
    from fabric.services.allocations import allocation_grow

    lease = _node(org)  # 1 node (8 GPUs) from 09:20
    allocation_grow(allocation=lease, nodes=1, actor=SYSTEM, now=T0 + timedelta(minutes=30))
    assert meter_usage(now=T0 + timedelta(minutes=40)) == 1  # hour 09 closed at 10:00
    # 09:20-10:00 on the first node, 09:50-10:00 on the second
    assert _gpu_seconds(org) == 40 * 60 * 8 + 10 * 60 * 8
