"""Order to ready, end to end: a real Celery worker runs bare-metal orders against four FakeNOS
switches (one per vendor, over SSH) and the sushy-tools Redfish emulator (whose power changes
take 1-11 s, as real BMCs take their time). For 1 server and for an 8-server cluster spread over
the 4 switches it prints the total, the time spent waiting on BMC power, the time on switch SSH,
and the portal's own time (the rest: authorization, allocation, Celery hops, database), with
the ratio of the total to the peers' time measured in the same run (1.0 = the portal adds
nothing). Targets: the portal's own time <= 2 s; the parallel push <= 1.5x the slowest switch.

    python -m portal.embedded run -- .venv/bin/python bench/orders.py [--rounds 3]

It works in a scratch database (bench_orders), so your data is untouched.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.scratch import django_setup, process_environment, scratch_database

VENDORS = ["arista_eos", "cisco_nxos", "juniper_junos", "dell_sonic"]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    django_setup()

    with scratch_database("bench_orders"):
        return run(args.rounds)


def _seconds(start, end) -> float:
    return (end - start).total_seconds() if start and end else 0.0


def measure(order) -> dict:
    steps = {s.key: s for s in order.steps.all()}
    pushes = list(order.network.pushes.filter(operation="attach").values_list("seconds", flat=True))
    bmc = _seconds(steps["power"].started_at, steps["power"].finished_at) + _seconds(
        steps["ready"].started_at, steps["ready"].finished_at
    )
    ssh = _seconds(steps["network"].started_at, steps["network"].finished_at)
    total = _seconds(order.created_at, order.ready_at)
    return {
        "total": total, "bmc": bmc, "ssh": ssh, "portal": total - bmc - ssh,
        "slowest_switch": max(pushes), "switches": len(pushes),
    }  # fmt: skip


def run(rounds: int) -> int:

    from billing.models import CreditGrant
    from catalog.models import Order, OrderState
    from catalog.services.orders import order_place, order_terminate
    from catalog.services.products import product_upsert
    from fabric.services.power import bmc_set
    from fabric.testbed import bmcs, inventory
    from fabric.testbed.switches import PASSWORD, SwitchSpec, start_switches
    from portal import stack
    from portal.embedded import free_port
    from portal.services.accounts import user_create
    from portal.services.audit import Actor

    env = process_environment(
        STOREFRONT_TESTBED_SWITCH_PASSWORD=PASSWORD, ORDER_POWER_POLL_SECONDS="0.25"
    )
    owner = user_create(
        username="bench", email="bench@example.com", password=os.urandom(8).hex(),
        organization_name="Bench", email_verified=True,
    )  # fmt: skip
    membership = owner.memberships.get()
    CreditGrant.objects.create(organization=membership.organization, amount=100_000)
    product = product_upsert(slug="bare-metal", name="Bare metal", kind="bare_metal", summary="-")
    specs = [SwitchSpec(f"{p.split('_')[0]}1", p) for p in VENDORS]
    results: dict[int, list[dict]] = {1: [], 8: []}
    with (
        tempfile.TemporaryDirectory() as tmp,
        start_switches(specs, state_dir=Path(tmp) / "sw") as switches,
        contextlib.ExitStack() as processes,
    ):
        _, nodes = inventory.build(switches=switches, nodes_per_switch=2, gpu_model="NVIDIA L40S")
        emulator = bmcs.start(
            names=[n.name for n in nodes], port=free_port(), directory=Path(tmp) / "bmc",
            password=uuid.uuid4().hex,
        )  # fmt: skip
        processes.callback(emulator.stop)
        for node in nodes:
            bmc_set(
                node=node, url=emulator.url, system_id=emulator.system_id(node.name),
                username=bmcs.USERNAME, password=emulator.password,
            )  # fmt: skip
        stack.web_and_worker(processes, env=env, logs=Path(tmp) / "logs")
        for _ in range(rounds):
            for size in (1, 8):
                order = order_place(
                    membership=membership, product=product,
                    spec={"gpu_model": "NVIDIA L40S", "nodes": size}, actor=Actor(user=owner),
                )  # fmt: skip
                deadline = time.monotonic() + 120
                while order.state not in (OrderState.ACTIVE, OrderState.FAILED):
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"order stuck in {order.state}: {order.message}")
                    time.sleep(0.1)
                    order = Order.objects.get(pk=order.pk)
                if order.state == OrderState.FAILED:
                    raise RuntimeError(order.message)
                results[size].append(measure(order))
                order_terminate(order=order, actor=Actor(user=owner))
                while not Order.objects.get(pk=order.pk).cleaned_up_at:
                    time.sleep(0.1)

    print(f"\nbare-metal order to ready, {rounds} rounds, median seconds (worst in brackets):\n")
    print(f"  {'servers':>7} {'total':>7} {'BMC power':>10} {'switch SSH':>11} {'portal':>7}"
          f" {'push/slowest':>13}")  # fmt: skip
    worst_portal, worst_push = 0.0, 0.0
    for size, rows in results.items():

        def med(key, rows=rows):
            return statistics.median(r[key] for r in rows)

        push = statistics.median(r["ssh"] / r["slowest_switch"] for r in rows)
        worst_portal = max(worst_portal, max(r["portal"] for r in rows))
        worst_push = max(worst_push, push)
        print(f"  {size:>7} {med('total'):7.2f} {med('bmc'):10.2f} {med('ssh'):11.2f}"
              f" {med('portal'):7.2f} {push:12.2f}x"
              f"  ({max(r['portal'] for r in rows):.2f} s portal, "
              f"{statistics.median(r['switches'] for r in rows):.0f} switches)")  # fmt: skip
        peers = med("bmc") + med("ssh")
        print(f"  {'':>7} total / peers' time = {med('total') / peers:.2f}")
    print(f"\nportal's own time, worst: {worst_portal:.2f} s (target <= 2); network step / "
          f"slowest switch session: {worst_push:.2f} (target <= 1.5)")  # fmt: skip
    return 0 if worst_portal <= 2 and worst_push <= 1.5 else 1


if __name__ == "__main__":
    sys.exit(main())
