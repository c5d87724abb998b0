"""Who may reach which server through a tenant network's bastion (fabric.bastion), and the ssh
line the customer is given: the keys of each live order on the network (those it chose, else
all of its orderer's) are granted that order's server addresses, nothing else."""

from __future__ import annotations

from collections import defaultdict

from catalog.models import Order, OrderNode, OrderState
from fabric.bastion import Bastion, bastion_of, probe_public_key
from portal.models import SshKey

LIVE = (OrderState.POWERING, OrderState.LAUNCHING, OrderState.READY, OrderState.ACTIVE)


def order_public_keys(*, order: Order) -> list[str]:
    """The public keys a server of `order` takes: those the order chose, else all of the
    orderer's (read when asked, so a key added before the boot counts)."""
    keys = SshKey.objects.filter(user_id=order.created_by_id)
    if order.spec.get("ssh_keys") is not None:
        keys = keys.filter(fingerprint__in=order.spec["ssh_keys"])
    return list(keys.order_by("pk").values_list("public_key", flat=True))


def bastion_grants(*, network) -> dict[str, set[str]]:
    """Public key -> the server addresses it may reach through `network`'s bastion (a fabric
    TenantNetwork; settings.ACCESS_BASTION_GRANTS names this function): each live
    order's keys its own servers, the portal's probe key (the ready check) all of them."""
    grants: dict[str, set[str]] = defaultdict(set)
    for order in Order.objects.filter(network=network, state__in=LIVE):
        addresses = set(order.nodes.exclude(address=None).values_list("address", flat=True))
        for key in order_public_keys(order=order):
            grants[key] |= addresses
        grants[probe_public_key()] |= addresses
    return {key: addresses for key, addresses in grants.items() if addresses}


def order_bastion(order: Order) -> Bastion | None:
    return bastion_of(order.network) if order.network_id else None


def ssh_line(order_node: OrderNode, *, user: str, bastion: Bastion | None) -> str:
    """What the customer pastes: through the bastion when the network has one."""
    if not order_node.address:
        return ""
    jump = f"-J {bastion.jump} " if bastion else ""
    return f"ssh {jump}{user}@{order_node.address}"
