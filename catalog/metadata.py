"""Per-node metadata for cloud-init's NoCloud datasource: a booting server fetches
`<base>/meta-data` and `<base>/user-data` (its hostname and the order owner's SSH keys) with a
per-node token in the path, and at the end of its boot cloud-init's phone_home posts its sshd
host keys to `<base of another token>/phone-home`. Each token is an HMAC of the node's row, a
random nonce and what it is for, so nothing secret is stored, the metadata token does not
open the phone-home URL, and both stop working when the order ends."""

from __future__ import annotations

import hashlib
import hmac
import json

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from catalog.access import LIVE, server_public_keys
from catalog.models import OrderNode, OrderState
from fabric.selectors import inventory as fabric_nodes
from portal.services.ssh_keys import ssh_key_parse

METADATA = "metadata"
PHONE_HOME = "phone-home"
# What cloud-init's phone_home module posts for each host key type it finds.
HOST_KEY_FIELDS = ("pub_key_ed25519", "pub_key_ecdsa", "pub_key_rsa")


def _mac(order_node_id: int, nonce: str, purpose: str = METADATA) -> str:
    message = f"{purpose}:{order_node_id}:{nonce}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()[:40]


def metadata_token(order_node: OrderNode, purpose: str = METADATA) -> str:
    return f"{order_node.pk}-{_mac(order_node.pk, order_node.metadata_nonce, purpose)}"


def metadata_node(token: str, purpose: str = METADATA) -> OrderNode | None:
    """The order node the token (for `purpose`) belongs to while its order is live; None
    otherwise."""
    pk, _, mac = token.partition("-")
    if not pk.isdigit():
        return None
    node = OrderNode.objects.select_related("order").filter(pk=int(pk)).first()
    if node is None or not hmac.compare_digest(mac, _mac(node.pk, node.metadata_nonce, purpose)):
        return None
    return node if node.order.state in LIVE else None


def phone_home_url(order_node: OrderNode) -> str:
    """The per-server signed URL cloud-init's phone_home posts to, as the servers reach the
    portal (settings.PROVISIONING_PORTAL_URL)."""
    path = reverse("metadata:phone-home", kwargs={"token": metadata_token(order_node, PHONE_HOME)})
    return settings.PROVISIONING_PORTAL_URL.rstrip("/") + path


def instance_id(order_node: OrderNode) -> str:
    return f"order-{order_node.order_id}-{order_node.hostname}"


def meta_data(order_node: OrderNode) -> str:
    return f"instance-id: {instance_id(order_node)}\n" + (
        f"local-hostname: {order_node.hostname}\n"
    )


def user_data(order_node: OrderNode, *, user: str = "ubuntu") -> str:
    """#cloud-config (written as JSON, which YAML reads too) with the keys of whoever placed
    the order (those the order chose, else all; read when the node boots), fresh host keys,
    and cloud-init's phone_home to this node's signed URL with those host keys."""
    OrderNode.objects.filter(pk=order_node.pk, metadata_fetched_at=None).update(
        metadata_fetched_at=timezone.now()
    )
    keys = server_public_keys(order=order_node.order)
    config = {
        "hostname": order_node.hostname,
        "users": [
            {
                "name": user,
                "shell": "/bin/bash",
                "sudo": "ALL=(ALL) NOPASSWD:ALL",
                "ssh_authorized_keys": list(keys),
            }
        ],
        "ssh_deletekeys": True,
        "phone_home": {
            "url": phone_home_url(order_node),
            "post": [*HOST_KEY_FIELDS, "instance_id", "hostname"],
            "tries": 10,
        },
    }
    return "#cloud-config\n" + json.dumps(config, indent=2) + "\n"


def network_config(order_node: OrderNode) -> str:
    """cloud-init's network-config (version 2, as JSON): each NIC of the server on the order's
    tenant network, matched by MAC, with its address and the segment's gateway as the default
    route. The provisioning NIC is not named: it keeps what DHCP gave it."""
    ethernets = {}
    if order_node.order.network_id:
        for nic in fabric_nodes.node_network_interfaces(
            network=order_node.order.network, node_id=order_node.node_id
        ):
            ethernets[nic["name"]] = {
                "match": {"macaddress": nic["mac"]},
                "set-name": nic["name"],
                "addresses": [nic["address"]],
                "routes": [{"to": "default", "via": nic["gateway"]}],
            }
    return json.dumps({"version": 2, "ethernets": ethernets}, indent=2) + "\n"


def phone_home_record(order_node: OrderNode, form) -> OrderNode:
    """Record what cloud-init's phone_home posted (`form`: a QueryDict or dict of its fields):
    the host keys, each a valid public key, and an instance id that must be this node's.
    ValidationError for anything else. Once the server was found ready its host keys are
    settled: the same keys again are accepted, others refused."""
    reported = str(form.get("instance_id", ""))
    if reported != instance_id(order_node):
        raise ValidationError(f"instance_id {reported!r} is not this server's.")
    keys = {}
    for field in HOST_KEY_FIELDS:
        text = str(form.get(field, "")).strip()
        if text:
            try:
                key_type, normalised, _, _ = ssh_key_parse(text)
            except ValidationError as exc:
                raise ValidationError(f"{field}: {' '.join(exc.messages)}") from exc
            keys[key_type] = normalised
    if not keys:
        raise ValidationError("No host key was posted.")
    with transaction.atomic():
        node = OrderNode.objects.select_for_update().get(pk=order_node.pk)
        if node.ready_at and node.host_keys and node.host_keys != keys:
            raise ValidationError("This server's host keys are settled; they do not change.")
        node.host_keys = keys
        node.phoned_home_at = timezone.now()
        node.save(update_fields=["host_keys", "phoned_home_at"])
    return node


def order_phoned_home(*, order_id: int) -> bool:
    """Whether the order waits in its ready check and every server of it has phoned home."""
    nodes = OrderNode.objects.filter(order_id=order_id)
    return (
        nodes.filter(order__state=OrderState.LAUNCHING).exists()
        and not nodes.filter(phoned_home_at=None).exists()
    )


def host_key_lines(order_node: OrderNode, address: str | None) -> list[dict]:
    """Each reported host key: its type, SHA256 fingerprint and the known_hosts line for
    `address`, so the customer's first ssh is verified."""
    found = []
    for key_type, public_key in sorted(order_node.host_keys.items()):
        try:
            _, normalised, _, fingerprint = ssh_key_parse(public_key)
        except ValidationError:
            continue
        found.append(
            {
                "type": key_type,
                "fingerprint": fingerprint,
                "known_hosts": f"{address} {normalised}" if address else "",
            }
        )
    return found


def metadata_seed_path(node_id: int) -> str | None:
    """The NoCloud seed path (`/metadata/<token>/`) of fabric node `node_id` while a live order
    holds it; None otherwise. The provisioning network's iPXE script carries it
    (settings.PROVISIONING_SEED names this function, so fabric never imports the catalog)."""
    order_node = (
        OrderNode.objects.filter(node_id=node_id, order__state__in=LIVE).order_by("-pk").first()
    )
    if order_node is None:
        return None
    document = reverse(
        "metadata:metadata", kwargs={"token": metadata_token(order_node), "document": "meta-data"}
    )
    return document.removesuffix("meta-data")
