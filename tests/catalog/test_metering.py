"""GPU time is metered per second from the moment a lease is active until it ends, each hour
written once; nothing is billed for a lease that never became active."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from billing.models import UsageEvent
from billing.rating import charges
from billing.services.ledger import usage_correct
from catalog.metering import meter_usage, unmetered_cost
from fabric.models import Allocation
from fabric.services.allocations import allocation_release, allocation_request
from fabric.states import allocation_transition
from fabric.testbed.fleet import fleet_generate
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


# --- reservations: billed for what they keep, used or not; never twice ------------------------

WINDOW = T0.replace(minute=0) + timedelta(hours=1)  # 10:00, forty minutes after T0


def _reserve(org, count=2, hours=2, weeks=1):
    from fabric.services.reservations import reservation_book

    return reservation_book(
        organization=org, gpu_model=H100, count=count, starts_at=WINDOW,
        ends_at=WINDOW + timedelta(hours=hours), weekly_occurrences=weeks, actor=SYSTEM, now=T0,
    )  # fmt: skip


def _reserved(org) -> Decimal:
    events = UsageEvent.objects.filter(organization=org, item=f"{H100}:reserved")
    return sum((e.quantity for e in events), Decimal(0))


def test_a_reservation_is_billed_for_its_whole_window_at_its_quoted_price_once(org):
    from catalog.pricing import quote

    reservation = _reserve(org)  # 2 GPUs, 10:00-12:00, nothing runs on them
    assert meter_usage(now=WINDOW + timedelta(minutes=30)) == 0  # the running hour waits
    # ... but is counted live: half an hour of 2 GPUs at $2.49
    assert unmetered_cost(organization=org, now=WINDOW + timedelta(minutes=30)) == Decimal("2.49")
    assert meter_usage(now=WINDOW + timedelta(hours=3)) == 2  # 10:00-11:00, 11:00-12:00
    assert meter_usage(now=WINDOW + timedelta(hours=3)) == 0  # the task again: nothing twice
    assert meter_usage(now=WINDOW + timedelta(days=1)) == 0
    assert _reserved(org) == 2 * 2 * 3600
    (line,) = charges(organization=org, start=T0, end=T0 + timedelta(days=1))
    assert line.item == f"{H100}:reserved"
    assert line.amount == quote(H100, reservation.gpu_hours) == Decimal("9.96")


def test_cancelling_before_a_window_costs_nothing_and_during_one_the_time_until_then(org):
    from fabric.services.reservations import reservation_cancel

    early = _reserve(org, count=1)
    reservation_cancel(reservation=early, actor=SYSTEM, now=T0 + timedelta(minutes=5))
    assert meter_usage(now=WINDOW + timedelta(days=1)) == 0
    weekly = _reserve(org, count=2, weeks=2)  # 10:00-12:00 today and in a week
    reservation_cancel(reservation=weekly, actor=SYSTEM, now=WINDOW + timedelta(minutes=30))
    meter_usage(now=WINDOW + timedelta(hours=1))
    meter_usage(now=WINDOW + timedelta(weeks=1, hours=3))
    assert _reserved(org) == 2 * 30 * 60  # half an hour of 2 GPUs; next week never
    assert UsageEvent.objects.filter(source=f"reservation:{early.pk}").count() == 0


def test_a_notebook_claiming_reserved_gpus_adds_no_second_charge_inside_the_window(org):
    from fabric.services.allocations import allocation_extend
    from fabric.services.reservations import reservation_claim

    reservation = _reserve(org, count=1)  # 10:00-12:00
    during = WINDOW + timedelta(minutes=10)
    claim = reservation_claim(reservation=reservation, shape="gpu", actor=SYSTEM, now=during)
    assert claim is not None and claim.claimed_from.reservation_id == reservation.pk
    # The session runs past the window: the hour after it is the claim's own.
    allocation_extend(
        allocation=claim, ends_at=WINDOW + timedelta(hours=3), actor=SYSTEM, now=during
    )
    meter_usage(now=WINDOW + timedelta(hours=4))
    assert _reserved(org) == 2 * 3600  # the reservation: its whole window, once
    own = UsageEvent.objects.filter(source=f"allocation:{claim.pk}")
    assert [(e.started_at, e.quantity) for e in own] == [(WINDOW + timedelta(hours=2), 3600)]
    lines = charges(organization=org, start=T0, end=T0 + timedelta(days=1))
    assert {line.item: line.amount for line in lines} == {
        f"{H100}:reserved": Decimal("4.98"), f"{H100}:gpu": Decimal("2.49")
    }  # fmt: skip
