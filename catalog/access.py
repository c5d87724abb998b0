"""Who may reach which server through a tenant network's bastion (fabric.bastion), and the ssh
line the customer is given: the keys of each live order on the network (those it chose, else
all of its orderer's) are granted that order's server addresses, nothing else."""

from __future__ import annotations

from collections import defaultdict

from catalog.models import Order, OrderNode, OrderState
from fabric.bastion import Bastion, bastion_of, probe_public_key
from portal.models import SshKey

LIVE = (OrderState.POWERING, OrderState.LAUNCHING, OrderState.READY, OrderState.ACTIVE)
RAY_CLIENT_PORT = 10001
RAY_DASHBOARD_PORT = 8265  # the dashboard and the Jobs API
# Products whose service the platform runs on the servers: the servers take the portal's key
# too (it starts the service over SSH through the bastion), and the order's keys may open
# these ports of its first server (the head) besides SSH. Ray has no authentication of its
# own: these ports are never exposed, only tunnelled through the jump host.
MANAGED_PORTS = {"ray": (RAY_CLIENT_PORT, RAY_DASHBOARD_PORT)}


def order_public_keys(*, order: Order) -> list[str]:
    """The public keys a server of `order` takes: those the order chose, else all of the
    orderer's (read when asked, so a key added before the boot counts)."""
    keys = SshKey.objects.filter(user_id=order.created_by_id)
    if order.spec.get("ssh_keys") is not None:
        keys = keys.filter(fingerprint__in=order.spec["ssh_keys"])
    return list(keys.order_by("pk").values_list("public_key", flat=True))


def cluster_nodes(order: Order) -> list[OrderNode]:
    """A managed cluster's live servers in the order they joined, its head first (the head
    never leaves a running cluster; a worker removed is off and no longer listed)."""
    return list(order.nodes.select_related("node").filter(powered_off_at=None).order_by("pk"))


def server_public_keys(*, order: Order) -> list[str]:
    """The keys a server of `order` takes at boot: the order's, and the portal's for a product
    whose service the platform runs there (MANAGED_PORTS)."""
    keys = order_public_keys(order=order)
    if order.product.kind in MANAGED_PORTS:
        keys.append(probe_public_key())
    return keys


def bastion_grants(*, network) -> dict[str, set[str]]:
    """Public key -> what it may reach through `network`'s bastion (a fabric TenantNetwork;
    settings.ACCESS_BASTION_GRANTS names this function): server addresses (port 22) and
    `address:port` targets. Each live order's keys reach its own servers (and its head's
    service ports, MANAGED_PORTS); the portal's probe key all of them (the ready check, starting
    a service, the dashboard proxy)."""
    grants: dict[str, set[str]] = defaultdict(set)
    orders = Order.objects.filter(network=network, state__in=LIVE).select_related("product")
    for order in orders:
        addresses = [n.address for n in cluster_nodes(order) if n.address]
        targets = set(addresses)
        if addresses:
            ports = MANAGED_PORTS.get(order.product.kind, ())
            targets |= {f"{addresses[0]}:{port}" for port in ports}
        for key in order_public_keys(order=order):
            grants[key] |= targets
        grants[probe_public_key()] |= targets
    return {key: targets for key, targets in grants.items() if targets}


def order_bastion(order: Order) -> Bastion | None:
    return bastion_of(order.network) if order.network_id else None


def ssh_line(order_node: OrderNode, *, user: str, bastion: Bastion | None) -> str:
    """What the customer pastes: through the bastion when the network has one."""
    if not order_node.address:
        return ""
    jump = f"-J {bastion.jump} " if bastion else ""
    return f"ssh {jump}{user}@{order_node.address}"
