"""Ray clusters: N whole servers of a GPU model, allocated, networked, powered and booted like
bare metal, then Ray started on them by the platform: the head on the first server placed, a
worker on each of the others, over SSH through the network's bastion with the portal's key
(which the servers' cloud-init adds for this product only), as the customer's user, each node
declaring its GPUs, its CPUs and an object store sized for the server (all nodes at once: a
worker's start waits for its head). The handover gives the Ray and Python versions the cluster
runs (clients must match), the tunnel through the jump host to the Ray Client and Jobs API
ports (Ray has no authentication of its own, so they are never exposed), and the dashboard,
proxied by the portal behind the tenant's login. Billing starts when Ray answers; terminate
powers off and cleans the servers like bare metal."""

from __future__ import annotations

import logging
import os
import re
import shlex
from concurrent.futures import ThreadPoolExecutor

import paramiko
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from catalog.access import RAY_CLIENT_PORT, RAY_DASHBOARD_PORT, cluster_nodes, order_bastion
from catalog.errors import StepFatal, StepTransient
from catalog.models import Order, OrderNode, OrderState
from catalog.offerings.bare_metal import SSH_USER, BareMetal, _bmc_errors, _nonce
from catalog.offerings.base import AUTHORIZE, Advance, Report, Step, Wait
from fabric.bastion import probe_connect, server_connect, server_run
from fabric.errors import PushFailed
from fabric.selectors import inventory as fabric_nodes
from fabric.services.allocations import allocation_grow, allocation_shrink
from fabric.services.networks import network_detach
from fabric.services.power import node_power_off
from portal.services.audit import Actor

S = OrderState
logger = logging.getLogger(__name__)
GCS_PORT = 6379
MIN_OBJECT_STORE = 78_643_200  # Ray's lower bound (75 MiB)
VERSIONS = re.compile(r"^storefront-ray-versions ([0-9][0-9a-z.+-]*) ([0-9][0-9.]*)$", re.M)


class RayCluster(BareMetal):
    kind = "ray"
    active_message = "Running. Open the tunnel below, then ray.init() or ray job submit."
    steps = (
        AUTHORIZE,
        Step("allocate", "Servers allocated", (S.AUTHORIZED, S.QUEUED, S.ALLOCATING)),
        Step("network", "Tenant network attached", (S.NETWORKING,)),
        Step("power", "Powered on, booting over PXE", (S.POWERING,)),
        Step("ready", "Booted; Ray head and workers started", (S.LAUNCHING,)),
        Step("handover", "Handed over", (S.READY,)),
    )
    recipe = {**BareMetal.recipe, S.LAUNCHING: "_launch"}

    def _launch(self, order: Order, report: Report) -> Advance | Wait:
        booted = self._ready_check(order, report)
        if isinstance(booted, Wait):
            return booted
        return self._ray_start(order, report)

    def _ray_start(self, order: Order, report: Report) -> Advance:
        """Every node at once: a worker's `ray start` waits for its head's GCS to answer.
        Idempotent: a node whose start was not recorded is started again (`ray stop` first);
        a head started again restarts the workers too, since they belong to the head."""
        head, *workers = cluster_nodes(order)
        if head.service_started_at is None:
            OrderNode.objects.filter(order=order).update(service={}, service_started_at=None)
            for worker in workers:
                worker.service_started_at = None
        todo = [n for n in [head, *workers] if n.service_started_at is None]
        if not todo:
            return Advance(S.READY, "Ray is up")
        bastion = order_bastion(order)
        if bastion is None:
            raise StepFatal("The cluster's network has no jump host to start Ray through.")
        timeout = settings.RAY_START_TIMEOUT_SECONDS
        try:
            jump = probe_connect(bastion, timeout=10)
        except (OSError, paramiko.SSHException) as exc:
            raise StepTransient(
                f"The jump host {bastion.public.ip} does not answer: {exc}"
            ) from exc
        report(key="ready", progress=80, detail=f"Starting Ray: the head on {head}, "
               f"{len(workers)} worker(s)")  # fmt: skip

        def start(order_node: OrderNode) -> None:
            joins = None if order_node is head else head.address
            _start(jump, order_node, head_address=joins, timeout=timeout)

        try:
            with ThreadPoolExecutor(max_workers=min(16, len(todo))) as pool:
                list(pool.map(start, todo))  # raises the first failure
        finally:
            jump.close()
        return Advance(S.READY, f"Ray head on {head}, {len(workers)} worker(s)")

    # --- a running cluster grows and shrinks --------------------------------------------

    def worker_add(self, order: Order, actor: Actor) -> OrderNode:
        """One more server for a running cluster, at its network's site (ValidationError, or
        fabric's CapacityConflict, when none is free): the allocation grows by one and the
        server joins through `worker_settle`."""
        if order.state != S.ACTIVE:
            raise ValidationError("Only a running cluster takes a new worker.")
        with transaction.atomic():
            live = {n.node_id for n in cluster_nodes(order)}
            allocation_grow(
                allocation=order.allocation, nodes=1, actor=actor, site=order.network.site.name
            )
            self._take_nodes(order, report=None)
            held = {n.pk for n in fabric_nodes.allocation_nodes(allocation_id=order.allocation_id)}
            joining = order.nodes.get(node_id__in=held - live)
            for field in _FRESH:  # a server that left once and comes back starts afresh
                setattr(joining, field, None)
            joining.metadata_nonce, joining.host_keys, joining.service = _nonce(), {}, {}
            joining.save()
            self._resize(order, +1)
        return joining

    def worker_settle(self, order: Order, report: Report) -> bool:
        """Bring the servers that do not run Ray yet into the cluster: the network, power,
        the boot, then Ray. True once they run it; False: call again (they are booting)."""
        for step in (self._network, self._power, self._ready_check, self._ray_start):
            if isinstance(step(order, report), Wait):
                return False
        return True

    def worker_remove(self, order: Order, actor: Actor, order_node: OrderNode | None = None):
        """Take a worker out (the last to join, unless one is named): Ray stopped on it, its
        power off, its NIC off the network, its server given back (it is cleaned). The head
        stays: a cluster keeps at least its head."""
        head, *workers = cluster_nodes(order)
        leaving = order_node or (workers[-1] if workers else None)
        if leaving is None or leaving.pk == head.pk:
            raise ValidationError("The cluster has no worker to remove: its head stays.")
        if leaving.service_started_at is not None:
            _ray_stop(order, leaving)
        if leaving.power_requested_at is not None:
            with _bmc_errors():
                node_power_off(node=leaving.node)
        interfaces = fabric_nodes.attached_interfaces(network=order.network, nodes=[leaving.node])
        if interfaces:
            try:
                network_detach(network=order.network, interfaces=interfaces, actor=actor)
            except PushFailed as exc:
                raise StepTransient(f"Detaching {leaving} failed: {exc}") from exc
        with transaction.atomic():
            allocation_shrink(
                allocation=order.allocation, nodes=1, actor=actor, node_ids=[leaving.node_id]
            )
            leaving.powered_off_at = timezone.now()
            leaving.save(update_fields=["powered_off_at"])
            self._resize(order, -1)
        return leaving

    def _resize(self, order: Order, by: int) -> None:
        spec = {**order.spec, "nodes": order.spec["nodes"] + by}
        order.spec, order.hourly_quote = spec, self.hourly_price(spec)
        order.save(update_fields=["spec", "hourly_quote", "updated_at"])

    def handover(self, order: Order) -> dict:
        data = super().handover(order)
        head = next(iter(cluster_nodes(order)), None)
        bastion = order_bastion(order)
        live = order.state in (S.READY, S.ACTIVE)
        if head is None or not head.service or bastion is None or not live:
            return {**data, "ray": {}}
        forwards = " ".join(
            f"-L {port}:{head.address}:{port}" for port in (RAY_CLIENT_PORT, RAY_DASHBOARD_PORT)
        )
        jobs = f"http://127.0.0.1:{RAY_DASHBOARD_PORT}"
        data["ray"] = {
            "head": head.hostname,
            "version": head.service["ray"],
            "python": head.service["python"],
            "tunnel": f"ssh -N {forwards} {bastion.jump}",
            "client": f'ray.init("ray://127.0.0.1:{RAY_CLIENT_PORT}")',
            "jobs": f"ray job submit --address {jobs} -- python job.py",
            "dashboard": reverse("orders:ray-dashboard", args=[order.pk, ""]),
        }
        return data


def object_store_bytes(memory_gb: int) -> int:
    """settings.RAY_OBJECT_STORE_FRACTION of the server's memory, within Ray's lower bound and
    settings.RAY_OBJECT_STORE_MAX_BYTES."""
    wanted = int(memory_gb * 2**30 * settings.RAY_OBJECT_STORE_FRACTION)
    return max(MIN_OBJECT_STORE, min(wanted, settings.RAY_OBJECT_STORE_MAX_BYTES))


def start_command(order_node: OrderNode, *, head_address: str | None) -> str:
    """`ray start` for the node (the head when `head_address` is None), from the inventory's
    numbers and IPAM's addresses only; then the versions it runs, on a line of their own."""
    node = order_node.node
    python = shlex.quote(settings.RAY_PYTHON)
    ray = f"{python} -m ray.scripts.scripts"
    args = [
        "start",
        f"--node-ip-address={order_node.address}",
        f"--num-cpus={max(1, min(node.cpu_cores or 1, settings.RAY_MAX_CPUS))}",
        f"--num-gpus={node.gpus.count()}",
        f"--object-store-memory={object_store_bytes(node.memory_gb)}",
        "--disable-usage-stats",
    ]
    if head_address is None:
        args += [
            "--head",
            f"--port={GCS_PORT}",
            f"--ray-client-server-port={RAY_CLIENT_PORT}",
            "--dashboard-host=0.0.0.0",
            f"--dashboard-port={RAY_DASHBOARD_PORT}",
        ]
    else:
        args.append(f"--address={head_address}:{GCS_PORT}")
    versions = (
        "import platform, ray; "
        "print('storefront-ray-versions', ray.__version__, platform.python_version())"
    )
    # Ray's processes, and the jobs they run, find the image's `python` first on their PATH.
    folder = shlex.quote(os.path.dirname(settings.RAY_PYTHON))
    path = f'export PATH={folder}:"$PATH"; ' if os.path.dirname(settings.RAY_PYTHON) else ""
    return (
        f"{path}{ray} stop --force >/dev/null 2>&1; "
        f"RAY_USAGE_STATS_ENABLED=0 {ray} {' '.join(args)} </dev/null && "
        f"{python} -c {shlex.quote(versions)}"
    )


_FRESH = dict.fromkeys(
    ("address", "power_requested_at", "powered_on_at", "ready_at", "powered_off_at",
     "metadata_fetched_at", "phoned_home_at", "service_started_at"),
)  # fmt: skip


def _ray_stop(order: Order, order_node: OrderNode) -> None:
    """Stop Ray on a worker before it goes, so the head sees it leave rather than die; a
    worker that does not answer is powered off anyway."""
    bastion = order_bastion(order)
    try:
        jump = probe_connect(bastion, timeout=10)
        try:
            server = server_connect(
                jump, order_node.address, user=SSH_USER, host_keys=order_node.host_keys,
                timeout=10,
            )  # fmt: skip
            try:
                python = shlex.quote(settings.RAY_PYTHON)
                server_run(server, f"{python} -m ray.scripts.scripts stop", timeout=60)
            finally:
                server.close()
        finally:
            jump.close()
    except (OSError, paramiko.SSHException) as exc:
        logger.warning("ray: stopping %s: %s", order_node, exc)


def _start(jump, order_node: OrderNode, *, head_address: str | None, timeout: float) -> None:
    role = "head" if head_address is None else "worker"
    logger.info("ray: starting the %s on %s (%s)", role, order_node, order_node.address)
    try:
        server = server_connect(
            jump,
            order_node.address,
            user=SSH_USER,
            host_keys=order_node.host_keys,
            timeout=10,
        )
    except (OSError, paramiko.SSHException) as exc:
        raise StepTransient(f"{order_node}: SSH through the jump host: {exc}") from exc
    try:
        status, output = server_run(
            server, start_command(order_node, head_address=head_address), timeout=timeout
        )
    finally:
        server.close()
    logger.info("ray: %s on %s answered %s: %s", role, order_node, status, output[-300:])
    found = VERSIONS.search(output)
    if status != 0 or found is None:
        tail = " ".join(output.strip().splitlines()[-3:])[-400:]
        why = f"no answer within {int(timeout)} s" if status == -1 else f"exit {status}: {tail}"
        raise StepFatal(f"Ray did not start on {order_node} ({role}): {why}")
    order_node.service = {"role": role, "ray": found[1], "python": found[2]}
    order_node.service_started_at = timezone.now()
    order_node.save(update_fields=["service", "service_started_at"])
