"""Per-node metadata for cloud-init's NoCloud datasource: a booting server fetches
`<base>/meta-data` and `<base>/user-data` (its hostname and the order owner's SSH keys) with a
per-node token in the path. The token is an HMAC of the node's row and a random nonce, so
nothing secret is stored, and it stops working when the order ends."""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings
from django.utils import timezone

from catalog.models import OrderNode, OrderState
from portal.models import SshKey

LIVE = (OrderState.POWERING, OrderState.LAUNCHING, OrderState.READY, OrderState.ACTIVE)


def _mac(order_node_id: int, nonce: str) -> str:
    message = f"metadata:{order_node_id}:{nonce}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()[:40]


def metadata_token(order_node: OrderNode) -> str:
    return f"{order_node.pk}-{_mac(order_node.pk, order_node.metadata_nonce)}"


def metadata_node(token: str) -> OrderNode | None:
    """The order node the token belongs to while its order is live; None otherwise."""
    pk, _, mac = token.partition("-")
    if not pk.isdigit():
        return None
    node = OrderNode.objects.select_related("order").filter(pk=int(pk)).first()
    if node is None or not hmac.compare_digest(mac, _mac(node.pk, node.metadata_nonce)):
        return None
    return node if node.order.state in LIVE else None


def meta_data(order_node: OrderNode) -> str:
    return f"instance-id: order-{order_node.order_id}-{order_node.hostname}\n" + (
        f"local-hostname: {order_node.hostname}\n"
    )


def user_data(order_node: OrderNode) -> str:
    """#cloud-config with the keys of whoever placed the order (read when the node boots)."""
    OrderNode.objects.filter(pk=order_node.pk, metadata_fetched_at=None).update(
        metadata_fetched_at=timezone.now()
    )
    keys = SshKey.objects.filter(user_id=order_node.order.created_by_id).values_list(
        "public_key", flat=True
    )
    lines = ["#cloud-config", "users:", "  - name: ubuntu", "    sudo: ALL=(ALL) NOPASSWD:ALL"]
    lines.append("    ssh_authorized_keys:")
    lines += [f"      - {public_key}" for public_key in keys]
    return "\n".join(lines) + "\n"
