"""Order to a connected `ray.init`, end to end: a real Celery worker runs Ray-cluster orders
(a head and one worker) against the FakeNOS switches, the sushy-tools Redfish emulator (power
changes take it 1-11 s) and the lab's servers, which boot from the portal; the platform then
starts Ray on them over SSH through the network's jump host. From the customer laptop the
benchmark opens the tunnel the order page shows and times `ray.init("ray://...")` until it
connects. Then, on the same servers, the baseline: Ray stopped, and a raw `ray start` of the
head and the worker over SSH (the same command, no portal) up to a connected `ray.init`.

It prints the order's time split into BMC power, boot (power on to the last phone-home), the
Ray step (the last server ready to Ray answering on every node), the connect from the laptop
and the portal's own time (the rest), and the ratio of the Ray part of the order (Ray step plus
connect) to the raw start (target <= 1.3x), beside the total (target p50 <= 20 s).

    sudo python -m portal.embedded run -- .venv/bin/python bench/ray.py [--rounds 3]

Root: the lab's servers are namespaces. It works in a scratch database (bench_ray).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.scratch import ROOT, django_setup, process_environment, scratch_database

VENDORS = ["arista_eos", "cisco_nxos", "juniper_junos", "dell_sonic"]
GPU_MODEL = "NVIDIA L40S"
PYTHON = str(ROOT / ".venv-notebook/bin/python")
CONNECT = """
import ray, sys, time
deadline = time.monotonic() + 120
while True:
    try:
        ray.init("ray://127.0.0.1:10001")
        break
    except Exception as exc:
        if time.monotonic() > deadline:
            sys.exit(f"ray.init: {exc!r}")
        time.sleep(0.25)
assert ray.cluster_resources().get("CPU", 0) >= 2, ray.cluster_resources()
"""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    django_setup()
    with scratch_database("bench_ray"):
        return run(args.rounds)


def _seconds(start, end) -> float:
    return (end - start).total_seconds() if start and end else 0.0


def connect(site, tunnel: str, config: Path) -> float:
    """Open the tunnel from the laptop and connect the Ray Client through it; the wall-clock
    time it connected."""
    log = tempfile.TemporaryFile()  # noqa: SIM115  (closed with the process)
    forwarding = subprocess.Popen(
        ["ip", "netns", "exec", site.access.laptop_ns, "ssh", "-F", str(config),
         *tunnel.split()[1:]],
        stderr=log,
    )  # fmt: skip
    try:
        done = site.access.laptop([PYTHON, "-c", CONNECT], timeout=200)
        if done.returncode != 0:
            log.seek(0)
            raise RuntimeError(f"{done.stderr[-1500:]}\ntunnel: {log.read().decode()[-500:]}")
        return time.time()
    finally:
        forwarding.terminate()
        forwarding.wait(10)


def raw_start(order) -> float:
    """Ray stopped on the order's servers, then started again over SSH without the portal
    (head and worker at once, the same command); seconds until every `ray start` returned."""
    from catalog.access import cluster_nodes, order_bastion
    from catalog.offerings.ray import start_command
    from fabric.bastion import probe_connect, server_connect, server_run
    from fabric.testbed.servers.lab import IMAGE_PYTHON

    head, *workers = cluster_nodes(order)
    jump = probe_connect(order_bastion(order), timeout=10)
    try:

        def on(node, command: str) -> str:
            server = server_connect(
                jump, node.address, user="ubuntu", host_keys=node.host_keys, timeout=10
            )
            try:
                status, output = server_run(server, command, timeout=120)
            finally:
                server.close()
            if status != 0:
                raise RuntimeError(f"{node}: {output[-500:]}")
            return output

        stop = f"{IMAGE_PYTHON} -m ray.scripts.scripts stop --force"
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda n: on(n, stop), [head, *workers]))
        started = time.time()
        commands = [(head, start_command(head, head_address=None))] + [
            (w, start_command(w, head_address=head.address)) for w in workers
        ]
        with ThreadPoolExecutor(len(commands)) as pool:
            list(pool.map(lambda pair: on(*pair), commands))
        return started
    finally:
        jump.close()


def run(rounds: int) -> int:
    from billing.models import CreditGrant
    from catalog.models import Order, OrderState
    from catalog.offerings.ray import RayCluster
    from catalog.services.orders import order_place, order_terminate
    from catalog.services.products import product_upsert
    from fabric.models import Node, NodeState
    from fabric.services.power import bmc_set
    from fabric.testbed import bmcs, inventory
    from fabric.testbed.servers.lab import IMAGE_PYTHON
    from fabric.testbed.servers.site import lab_served
    from fabric.testbed.switches import PASSWORD, SwitchSpec, start_switches
    from portal import stack
    from portal.embedded import free_port
    from portal.services.accounts import user_create
    from portal.services.audit import Actor
    from portal.services.ssh_keys import ssh_key_add

    if os.geteuid() != 0:
        print("the lab's servers are namespaces: run this benchmark as root.")
        return 2
    env = process_environment(
        STOREFRONT_TESTBED_SWITCH_PASSWORD=PASSWORD, ORDER_POWER_POLL_SECONDS="0.25",
        RAY_PYTHON=IMAGE_PYTHON, RAY_MAX_CPUS="1",
        RAY_OBJECT_STORE_MAX_BYTES=str(100 * 2**20),
    )  # fmt: skip
    os.environ.update({k: env[k] for k in ("RAY_PYTHON", "RAY_MAX_CPUS")})
    from django.conf import settings

    settings.RAY_PYTHON, settings.RAY_MAX_CPUS = env["RAY_PYTHON"], 1
    settings.RAY_OBJECT_STORE_MAX_BYTES = 100 * 2**20
    owner = user_create(
        username="bench", email="bench@example.com", password=os.urandom(8).hex(),
        organization_name="Bench", email_verified=True,
    )  # fmt: skip
    membership = owner.memberships.get()
    CreditGrant.objects.create(organization=membership.organization, amount=100_000)
    product = product_upsert(slug="ray-cluster", name="Ray cluster", kind="ray", summary="-")
    keys = Path(tempfile.mkdtemp(prefix="bench-keys-"))
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / "laptop")], check=True
    )
    public_key = (keys / "laptop.pub").read_text()
    ssh_key_add(user=owner, name="laptop", public_key=public_key, actor=Actor(user=owner))
    config = keys / "config"
    config.write_text(
        f"Host *\n  IdentityFile {keys / 'laptop'}\n  IdentitiesOnly yes\n  BatchMode yes\n"
        f"  UserKnownHostsFile /dev/null\n  StrictHostKeyChecking no\n  LogLevel ERROR\n"
        "  ConnectTimeout 5\n  ExitOnForwardFailure yes\n"
    )
    specs = [SwitchSpec(f"{p.split('_')[0]}1", p) for p in VENDORS]
    rows = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        start_switches(specs, state_dir=Path(tmp) / "sw") as switches,
        contextlib.ExitStack() as processes,
    ):
        _, nodes = inventory.build(switches=switches, nodes_per_switch=1, gpu_model=GPU_MODEL)
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
        site = processes.enter_context(lab_served(nodes, env=env, root=Path(tmp) / "lab"))
        for _ in range(rounds):
            placed = time.time()
            order = order_place(
                membership=membership, product=product,
                spec={"gpu_model": GPU_MODEL, "nodes": 2}, actor=Actor(user=owner),
            )  # fmt: skip
            deadline = time.monotonic() + 180
            while order.state not in (OrderState.ACTIVE, OrderState.FAILED):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"order stuck in {order.state}: {order.message}")
                time.sleep(0.1)
                order = Order.objects.get(pk=order.pk)
            if order.state == OrderState.FAILED:
                raise RuntimeError(order.message)
            tunnel = RayCluster().handover(order)["ray"]["tunnel"]
            connected = connect(site, tunnel, config)
            steps = {s.key: s for s in order.steps.all()}
            servers = list(order.nodes.all())
            last_ready = max(n.ready_at for n in servers)
            powered = steps["power"].finished_at
            row = {
                "total": connected - placed,
                "bmc": _seconds(steps["power"].started_at, steps["power"].finished_at),
                "boot": max(_seconds(powered, n.phoned_home_at) for n in servers),
                "ssh": _seconds(steps["network"].started_at, steps["network"].finished_at),
                "ray": _seconds(last_ready, max(n.service_started_at for n in servers)),
                "connect": connected - order.ready_at.timestamp(),
            }  # fmt: skip
            row["portal"] = row["total"] - row["bmc"] - row["boot"] - row["ssh"] - row["ray"]
            row["portal"] -= row["connect"]
            started = raw_start(order)
            row["raw"] = connect(site, tunnel, config) - started
            rows.append(row)
            order_terminate(order=order, actor=Actor(user=owner))
            while not Order.objects.get(pk=order.pk).cleaned_up_at:
                time.sleep(0.1)
            deadline = time.monotonic() + 120
            while Node.objects.filter(pk__in=[n.pk for n in nodes], state=NodeState.CLEANING):
                if time.monotonic() > deadline:
                    raise TimeoutError("servers still cleaning")
                time.sleep(0.2)

    def med(key: str) -> float:
        return statistics.median(r[key] for r in rows)

    ratio = (med("ray") + med("connect")) / med("raw")
    print(f"\nRay cluster (head + 1 worker) order to a connected ray.init, {rounds} rounds, "
          "median seconds:\n")  # fmt: skip
    print(f"  {'total':>7} {'BMC power':>10} {'boot':>6} {'switch SSH':>11} {'Ray step':>9}"
          f" {'connect':>8} {'portal':>7} | {'raw ray start + connect':>24}")  # fmt: skip
    print(f"  {med('total'):7.2f} {med('bmc'):10.2f} {med('boot'):6.2f} {med('ssh'):11.2f}"
          f" {med('ray'):9.2f} {med('connect'):8.2f} {med('portal'):7.2f} |"
          f" {med('raw'):24.2f}")  # fmt: skip
    print(f"\norder to ray.init p50: {med('total'):.2f} s (target <= 20); the order's Ray part "
          f"(Ray step + connect) / raw ray start over SSH + connect: {ratio:.2f}x (target <= 1.3); "
          f"total less BMC power: {med('total') - med('bmc'):.2f} s")  # fmt: skip
    return 0 if med("total") <= 20 and ratio <= 1.3 else 1


if __name__ == "__main__":
    sys.exit(main())
