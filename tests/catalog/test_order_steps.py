"""The order recipe driven step by step in this process (no worker): real FakeNOS switches
over SSH, the Redfish emulator, PostgreSQL. What each step leaves behind, and that a failure
at any step gives everything back and charges nothing."""

import ipaddress
import time

import pytest

from billing.models import UsageEvent
from catalog.models import Order, OrderState, OrderStep
from catalog.selectors.orders import order_snapshot
from catalog.services.orders import order_advance_run, order_place, order_terminate
from fabric.models import AllocationState, NetworkAttachment, Node, NodeState
from fabric.services.power import node_power_state
from portal.services.audit import Actor
from tests.catalog.lab import GPU_MODEL, bare_metal_lab, customer

pytestmark = pytest.mark.django_db
S = OrderState


def drive(order: Order, until: tuple, timeout: float = 60) -> Order:
    deadline = time.monotonic() + timeout
    while True:
        order.refresh_from_db()
        if order.state in until:
            return order
        assert time.monotonic() < deadline, f"stuck in {order.state}: {order.message}"
        if order_advance_run(order_id=order.pk) == "waiting":
            time.sleep(0.3)


def place(user, product, nodes=2):
    return order_place(
        membership=user.memberships.get(), product=product,
        spec={"gpu_model": GPU_MODEL, "nodes": nodes}, actor=Actor(user=user),
    )  # fmt: skip


def test_given_servers_and_credit_when_the_order_runs_then_they_are_on_networked_and_handed_over(
    switches, bmc_emulator
):
    _, _, product = bare_metal_lab(switches=switches, emulator=bmc_emulator)
    user = customer()
    order = place(user, product)
    assert order.hourly_quote > 0 and order.state == S.PLACED

    order = drive(order, until=(S.ACTIVE, S.FAILED))

    assert order.state == S.ACTIVE, order.message
    assert order.ready_at is not None
    assert [e.to_state for e in order.events.all()] == [
        S.PLACED, S.AUTHORIZED, S.QUEUED, S.ALLOCATING, S.NETWORKING, S.POWERING, S.LAUNCHING,
        S.READY, S.ACTIVE,
    ]  # fmt: skip
    assert set(order.steps.values_list("state", flat=True)) == {OrderStep.State.DONE}
    held = [n.node for n in order.nodes.all()]
    assert len(held) == 2 and all(node_power_state(node=n) == "on" for n in held)
    attached = NetworkAttachment.objects.filter(network=order.network, state="attached")
    assert attached.count() == 2
    vlan = order.network.segments.get().vlan.value
    leaf = attached.first().port.switch.name
    assert any(str(vlan) in line for line in switches.running_lines(leaf))
    handover = order_snapshot(order)["handover"]["nodes"]
    jump = order_snapshot(order)["handover"]["jump"]
    assert jump == f"jump@{ipaddress.ip_network(order.network.access_prefix)[2]}"
    assert all(n["ssh"] == f"ssh -J {jump} ubuntu@{n['address']}" for n in handover)
    assert all(n["address"].startswith("10.210.") for n in handover)

    order_terminate(order=order, actor=Actor(user=user))
    order = drive(order, until=(S.TERMINATED, S.FAILED))
    assert order.state == S.TERMINATED and order.cleaned_up_at
    order.allocation.refresh_from_db()
    assert order.allocation.state == AllocationState.RELEASED
    assert not NetworkAttachment.objects.filter(network=order.network, state="attached").exists()
    states = Node.objects.filter(pk__in=[h.pk for h in held]).values_list("state", flat=True)
    assert set(states) == {NodeState.CLEANING}  # given back: erased before placeable again
    assert {n["state"] for n in order_snapshot(order)["handover"]["nodes"]} == {"ended"}
    usage = UsageEvent.objects.filter(source=f"allocation:{order.allocation_id}")
    billed = sum(e.quantity for e in usage)
    window = (order.ended_at - order.ready_at).total_seconds()
    assert abs(float(billed) - 2 * window) < 0.01  # 2 servers x 1 GPU, from ready to end only


def test_a_step_that_fails_on_a_defect_fails_the_order_and_gives_everything_back(
    switches, bmc_emulator, monkeypatch, caplog
):
    """Not a peer's error but a bug (an AttributeError in an offering): the task logs it and
    fails the order, which compensates, instead of leaving it in a working state for ever."""
    from catalog import tasks
    from catalog.offerings.bare_metal import BareMetal

    _, _, product = bare_metal_lab(switches=switches, emulator=bmc_emulator)
    order = drive(place(customer(), product), until=(S.POWERING,))
    monkeypatch.setattr(BareMetal, "_power", lambda *a: None.missing)
    assert tasks.order_advance(order.pk) == "failed"
    order.refresh_from_db()
    assert order.state == S.FAILED and order.message == tasks.DEFECT
    assert order.steps.get(key="power").state == OrderStep.State.FAILED
    assert "unexpected error" in caplog.text and "AttributeError" in caplog.text
    assert order_advance_run(order_id=order.pk) == "cleaned up"
    order.refresh_from_db()
    assert order.cleaned_up_at is not None and order.allocation.state == AllocationState.RELEASED
