"""A running Ray cluster: workers added and removed as order actions (the server's boot and
Ray's start run in a task; a worker that does not join is taken out again and the customer is
told), and its dashboard, through the portal: the tenant's browser asks the portal
(signed in, the order visible to them), which reads the head's dashboard port through the
network's jump host with its own key (catalog.access grants it) and answers with what it got.
Ray has no login of its own, so its dashboard is never reachable any other way."""

from __future__ import annotations

import http.client
import re
import time
from dataclasses import dataclass
from urllib.parse import urlencode

import paramiko
from django.conf import settings
from django.core.exceptions import ValidationError

from catalog import realtime
from catalog.access import RAY_DASHBOARD_PORT, cluster_nodes, order_bastion
from catalog.errors import StepFatal
from catalog.models import Order, OrderState
from catalog.offerings import offering_for
from fabric.bastion import probe_connect, probe_open
from portal.celery import task
from portal.services.audit import Actor, audit_record

PATH = re.compile(r"^[A-Za-z0-9._~/-]*$")


class DashboardUnavailable(Exception):
    """The dashboard cannot be read now; the message says why."""


@dataclass(frozen=True)
class DashboardPage:
    status: int
    content_type: str
    body: bytes


def ray_dashboard_get(*, order: Order, path: str, query: dict[str, str]) -> DashboardPage:
    """GET `path` (with `query`) of the dashboard of `order`'s cluster."""
    if not PATH.match(path) or ".." in path.split("/"):
        raise DashboardUnavailable("Not a dashboard page.")
    head = next((n for n in cluster_nodes(order) if n.address), None)
    bastion = order_bastion(order)
    running = order.state in (OrderState.READY, OrderState.ACTIVE)
    if order.product.kind != "ray" or not running or head is None or not head.service:
        raise DashboardUnavailable("The cluster is not running.")
    if bastion is None:
        raise DashboardUnavailable("The cluster's network has no jump host.")
    target = "/" + path + (f"?{urlencode(query)}" if query else "")
    try:
        jump = probe_connect(bastion, timeout=10)
    except (OSError, paramiko.SSHException) as exc:
        raise DashboardUnavailable(f"The jump host does not answer: {exc}") from exc
    try:
        connection = http.client.HTTPConnection(head.address, RAY_DASHBOARD_PORT, timeout=30)
        connection.sock = probe_open(jump, head.address, port=RAY_DASHBOARD_PORT, timeout=10)
        connection.request("GET", target, headers={"Accept-Encoding": "identity"})
        answer = connection.getresponse()
        content_type = answer.getheader("Content-Type", "application/octet-stream")
        return DashboardPage(answer.status, content_type, answer.read())
    except (OSError, paramiko.SSHException, http.client.HTTPException) as exc:
        raise DashboardUnavailable(f"The Ray dashboard does not answer: {exc}") from exc
    finally:
        jump.close()


def _running_cluster(order: Order) -> None:
    if order.offering != "ray" or order.state != OrderState.ACTIVE:
        raise ValidationError("Only a running Ray cluster adds or removes workers.")


def ray_worker_add(*, order: Order, actor: Actor) -> None:
    """One more server for the cluster, placed now (ValidationError when none is free); it
    boots and joins in a task, and the order page follows it."""
    _running_cluster(order)
    joining = offering_for("ray").worker_add(order, actor)
    audit_record(
        actor=actor, organization=order.organization, action="ray.worker_add",
        target=f"{order} {joining}",
    )  # fmt: skip
    _say(order, f"Adding a worker: {joining} is booting.")
    task("catalog.tasks.ray_workers_settle").delay(order.pk)


def ray_worker_remove(*, order: Order, actor: Actor) -> None:
    """Take the last worker out, in a task (Ray stopped on it, power off, network, cleaned)."""
    _running_cluster(order)
    if len(cluster_nodes(order)) < 2:
        raise ValidationError("The cluster has no worker to remove: its head stays.")
    audit_record(actor=actor, organization=order.organization, action="ray.worker_remove",
                 target=str(order))  # fmt: skip
    task("catalog.tasks.ray_worker_remove").delay(order.pk)


def ray_worker_remove_run(*, order_id: int) -> str:
    order = Order.objects.select_related("allocation", "network").get(pk=order_id)
    if order.state != OrderState.ACTIVE:
        return "not running"
    leaving = offering_for("ray").worker_remove(order, Actor.system("task"))
    _say(order, f"Worker {leaving} removed; its server is given back.")
    return "removed"


def ray_workers_settle_run(*, order_id: int) -> str:
    """Boot the cluster's new servers and start Ray on them; one that does not join within
    ORDER_BOOT_TIMEOUT_SECONDS, or fails, is taken out again (power off, network, given back)
    and the order says why. Stops when the order stops."""
    offering = offering_for("ray")
    deadline = time.monotonic() + settings.ORDER_BOOT_TIMEOUT_SECONDS + 60
    while True:
        order = Order.objects.select_related("allocation", "network").get(pk=order_id)
        if order.state != OrderState.ACTIVE:
            return "not running"
        try:
            if offering.worker_settle(order, _quiet):
                _say(order, offering.active_message)
                return "joined"
            if time.monotonic() > deadline:
                raise StepFatal("it did not join in time")
        except StepFatal as exc:
            actor = Actor.system("task")
            for joining in [n for n in cluster_nodes(order) if n.service_started_at is None]:
                offering.worker_remove(order, actor, joining)
            _say(order, f"The new worker did not join ({exc}); it was given back.")
            return "failed"
        realtime.order_publish(order_id=order.pk)  # the servers table follows the boot
        time.sleep(settings.ORDER_POWER_POLL_SECONDS)


def _quiet(*, key: str, progress: int, detail: str) -> None:
    """A running order's steps are done: a joining worker shows in its servers table."""


def _say(order: Order, message: str) -> None:
    Order.objects.filter(pk=order.pk).update(message=message[:300])
    realtime.order_publish(order_id=order.pk)
