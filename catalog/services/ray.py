"""A running Ray cluster's dashboard, through the portal: the tenant's browser asks the portal
(signed in, the order visible to them), which reads the head's dashboard port through the
network's jump host with its own key (catalog.access grants it) and answers with what it got.
Ray has no login of its own, so its dashboard is never reachable any other way."""

from __future__ import annotations

import http.client
import re
from dataclasses import dataclass
from urllib.parse import urlencode

import paramiko

from catalog.access import RAY_DASHBOARD_PORT, cluster_nodes, order_bastion
from catalog.models import Order, OrderState
from fabric.bastion import probe_connect, probe_open

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
