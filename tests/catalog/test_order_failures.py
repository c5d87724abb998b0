"""Orders that go wrong, run by a real Celery worker process: a BMC that does not answer, a
BMC that refuses the credentials, a switch that rejects a command, a declined card, and a
worker killed in the middle of a step. Each ends failed or completed, with capacity and network
given back, nothing billed for servers that never became ready, and a message for the tenant."""

import contextlib
import signal
import time
import uuid

import psutil
import pytest

from billing.models import UsageEvent
from catalog.models import Order, OrderState, OrderStep
from catalog.services.orders import order_place
from fabric.models import Bmc, NetworkAttachment, Node, NodeState
from portal import stack
from portal.celery import app as celery_app
from portal.embedded import free_port
from portal.services.audit import Actor
from tests.billing import cardholder
from tests.catalog.lab import GPU_MODEL, bare_metal_lab, customer

pytestmark = pytest.mark.django_db(transaction=True)
S = OrderState


def place(user, product, nodes=2) -> Order:
    return order_place(
        membership=user.memberships.get(), product=product,
        spec={"gpu_model": GPU_MODEL, "nodes": nodes}, actor=Actor(user=user),
    )  # fmt: skip


def wait_for(order: Order, states, timeout: float = 90) -> Order:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        order.refresh_from_db()
        if order.state in states and (order.state == S.ACTIVE or order.cleaned_up_at):
            return order
        time.sleep(0.2)
    raise AssertionError(f"order stuck in {order.state}: {order.message}")


def wait_for_node(node: Node, state: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        node.refresh_from_db()
        if node.state == state:
            return node.events.order_by("-pk").first()
        time.sleep(0.2)
    raise AssertionError(f"{node} stuck in {node.state}, not {state}")


def assert_given_back(order: Order, nodes, unbootable=()) -> None:
    """Capacity released, no NIC left on the network, servers back to the pool (those it held
    through cleaning first), nothing billed. An `unbootable` server (its BMC refuses) cannot be
    booted into its cleaning job: it ends in maintenance, never back in the pool."""
    for node in unbootable:
        event = wait_for_node(node, NodeState.MAINTENANCE)
        assert event.detail.startswith("cleaning failed: cannot boot the cleaning job")
    nodes = [n for n in nodes if n not in unbootable]
    if order.allocation_id:
        order.allocation.refresh_from_db()
        assert order.allocation.state in ("released", "cancelled")
    assert not NetworkAttachment.objects.filter(state__in=["pending", "attached"]).exists()
    held = Node.objects.filter(pk__in=[n.pk for n in nodes])
    assert set(held.values_list("state", flat=True)) <= {NodeState.AVAILABLE, NodeState.CLEANING}
    assert not held.exclude(organization=None).exists()
    assert order.ready_at is None
    assert not UsageEvent.objects.filter(organization=order.organization).exists()


def test_given_a_bmc_that_does_not_answer_then_the_order_fails_and_gives_everything_back(
    live_stack, switches, bmc_emulator
):
    _, nodes, product = bare_metal_lab(switches=switches, emulator=bmc_emulator)
    Bmc.objects.filter(node=nodes[1]).update(url=f"http://127.0.0.1:{free_port()}")
    order = wait_for(place(customer(), product), (S.FAILED,))

    assert "did not answer" in order.message and "gave up after 2 retries" in order.message
    assert order.steps.get(key="power").state == OrderStep.State.FAILED
    assert order.steps.get(key="network").state == OrderStep.State.DONE
    assert_given_back(order, nodes)
    assert order.network.state == "deleted"


def test_given_a_bmc_that_refuses_the_credentials_then_the_order_fails_at_once(
    live_stack, switches, bmc_emulator
):
    from fabric.services.power import bmc_set

    _, nodes, product = bare_metal_lab(switches=switches, emulator=bmc_emulator)
    bmc = nodes[0].bmc
    bmc_set(node=nodes[0], url=bmc.url, system_id=bmc.system_id, username="admin", password="no")
    order = wait_for(place(customer(), product), (S.FAILED,))

    assert "refused the credentials" in order.message
    assert "no" not in order.message.split()  # the password never reaches a message
    assert_given_back(order, nodes, unbootable=[nodes[0]])


def test_given_a_switch_that_rejects_a_command_then_the_order_fails_and_no_switch_keeps_config(
    live_stack, switches, bmc_emulator
):
    _, nodes, product = bare_metal_lab(switches=switches, emulator=bmc_emulator)
    startup = {d.name: switches.state(d.name)["startup"] for d in switches}
    switches.set_reject("cisco1", ["switchport access vlan"])
    try:
        order = wait_for(place(customer(), product, nodes=4), (S.FAILED,))
    finally:
        switches.set_reject("cisco1", [])

    assert order.message.startswith("A switch refused the network configuration")
    assert "cisco1" in order.message
    assert order.steps.get(key="network").state == OrderStep.State.FAILED
    marks = (order.network.vrf, f"{order.network.device_name}-")
    for device in switches:  # every switch undid what it applied, and saved nothing
        lines = switches.running_lines(device.name)
        assert not [line for line in lines if any(m in line for m in marks)], device.name
        assert switches.state(device.name)["startup"] == startup[device.name]
    assert_given_back(order, nodes)


def test_given_a_card_that_declines_then_the_order_fails_before_anything_is_built(
    live_stack, switches, bmc_emulator
):
    _, nodes, product = bare_metal_lab(switches=switches, emulator=bmc_emulator)
    user = customer(credit=None)
    cardholder.save_card(user.memberships.get(), "4000000000000341")  # attaches, then declines
    order = wait_for(place(user, product), (S.FAILED,))

    assert order.message.startswith("Payment was not authorized")
    assert "declined" in order.message
    assert order.allocation_id is None and order.network_id is None
    assert order.steps.get(key="authorize").state == OrderStep.State.FAILED
    assert_given_back(order, nodes)


def test_given_a_worker_killed_in_the_middle_of_a_step_then_another_run_completes_the_order(
    live_stack, switches, bmc_emulator, tmp_path
):
    """A worker of its own (prefork, one child) on a queue of its own; its child is killed with
    SIGKILL while it pushes the network. acks_late + reject_on_worker_lost put the message back,
    a new child runs the step again, and the order ends ready with each NIC attached once."""
    _, _nodes, product = bare_metal_lab(switches=switches, emulator=bmc_emulator)
    queue = f"kill-{uuid.uuid4().hex[:8]}"
    env = {**live_stack.env, "STOREFRONT_QUEUE_PREFIX": queue}
    previous = celery_app.conf.task_default_queue
    with contextlib.ExitStack() as processes:
        worker = stack.spawn(
            processes,
            [stack.BIN / "celery", "-A", "portal", "worker", "--pool=prefork", "--concurrency=1",
             "--loglevel=info", "--without-gossip", "--without-mingle", "--without-heartbeat"],
            env=env, log=tmp_path / "worker.log",
        )  # fmt: skip
        celery_app.conf.task_default_queue = queue
        try:
            order = place(customer(), product, nodes=4)
        finally:
            celery_app.conf.task_default_queue = previous
        deadline = time.monotonic() + 60
        while not NetworkAttachment.objects.filter(network__order=order, state="pending").exists():
            assert time.monotonic() < deadline, "the network step never started"
            time.sleep(0.02)
        children = psutil.Process(worker.pid).children()
        assert len(children) == 1
        children[0].send_signal(signal.SIGKILL)  # mid-push: some switches configured, some not

        order = wait_for(order, (S.ACTIVE, S.FAILED), timeout=120)
        log = (tmp_path / "worker.log").read_text()
    assert "WorkerLostError" in log or "SIGKILL" in log
    assert order.state == S.ACTIVE, order.message
    attached = NetworkAttachment.objects.filter(network=order.network, state="attached")
    assert attached.count() == 4
    assert attached.values("interface").distinct().count() == 4
    assert [e.to_state for e in order.events.all()].count(S.NETWORKING) == 1
