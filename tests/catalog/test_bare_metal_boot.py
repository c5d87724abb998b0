"""cloud-init's phone-home: the user-data names a per-server signed URL, which records the host
keys a booting server posts (cloud-init's form fields) and refuses forged tokens, the metadata
token, another instance id, keys that do not parse, and, once the server was found ready, other
keys; the order's API and page show each key's SHA256 fingerprint and known_hosts line. The
whole boot against a lab server is tests/fabric/test_lab_boot.py."""

import json
import secrets

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from django.utils import timezone

from catalog.metadata import PHONE_HOME, instance_id, metadata_token
from catalog.models import Order, OrderNode, OrderState
from catalog.services.products import product_upsert
from tests.fabric.factories import NodeFactory
from tests.portal.factories import member, organization_of

pytestmark = pytest.mark.django_db
PORTAL = "http://10.99.0.1:8000"


def _host_key() -> str:
    return (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )


@pytest.fixture
def order_node(settings):
    settings.PROVISIONING_PORTAL_URL = PORTAL
    owner = member(verified=True)
    product = product_upsert(slug="bare-metal", name="Bare metal", kind="bare_metal", summary="-")
    order = Order.objects.create(
        organization=organization_of(owner), created_by=owner, product=product,
        offering="bare_metal", spec={"gpu_model": "X", "nodes": 1}, hourly_quote=1,
        state=OrderState.LAUNCHING,
    )  # fmt: skip
    node = NodeFactory(name="gpu-boot-1")
    return OrderNode.objects.create(
        order=order, node=node, hostname=node.name, address="10.210.2.2",
        metadata_nonce=secrets.token_hex(16),
    )  # fmt: skip


def test_the_user_data_names_the_signed_phone_home_url_which_records_the_host_keys(
    client, order_node
):
    user_data = client.get(f"/metadata/{metadata_token(order_node)}/user-data").content.decode()
    assert user_data.startswith("#cloud-config\n")
    config = json.loads(user_data.split("\n", 1)[1])  # JSON: YAML that cloud-init reads too
    phone_home = config["phone_home"]
    url = f"{PORTAL}/metadata/{metadata_token(order_node, PHONE_HOME)}/phone-home"
    assert phone_home["url"] == url
    assert {"pub_key_ed25519", "instance_id"} <= set(phone_home["post"])
    assert config["users"][0]["name"] == "ubuntu" and config["hostname"] == "gpu-boot-1"

    path = url.removeprefix(PORTAL)
    key = _host_key()
    form = {"pub_key_ed25519": f"{key} root@gpu-boot-1", "instance_id": instance_id(order_node)}
    assert client.get(path).status_code == 405
    # The metadata token does not open the phone-home URL, nor does a forged one.
    assert (
        client.post(f"/metadata/{metadata_token(order_node)}/phone-home", form).status_code == 404
    )
    token = path.removesuffix("/phone-home")
    forged = token[:-1] + ("1" if token[-1] == "0" else "0") + "/phone-home"  # one digit off
    assert client.post(forged, form).status_code == 404
    assert client.post(path, {**form, "instance_id": "order-9-other"}).status_code == 400
    assert client.post(path, {**form, "pub_key_ed25519": "ssh-ed25519 AAAA"}).status_code == 400
    assert client.post(path, {"instance_id": form["instance_id"]}).status_code == 400
    order_node.refresh_from_db()
    assert order_node.phoned_home_at is None and order_node.host_keys == {}

    answer = client.post(path, form)
    assert answer.status_code == 200, answer.content
    order_node.refresh_from_db()
    assert order_node.phoned_home_at and order_node.host_keys == {"ssh-ed25519": key}

    # The customer's view: the fingerprint and the known_hosts line for the given address.
    client.force_login(order_node.order.created_by)
    snapshot = client.get(f"/api/v1/orders/{order_node.order_id}/").json()
    shown = snapshot["handover"]["nodes"][0]
    assert shown["state"] == "booted"
    [line] = shown["host_keys"]
    assert line["type"] == "ssh-ed25519" and line["fingerprint"].startswith("SHA256:")
    assert line["known_hosts"] == f"10.210.2.2 {key}"
    page = client.get(f"/orders/{order_node.order_id}/").content.decode()
    assert line["fingerprint"] in page and line["known_hosts"] in page

    # Found ready: the keys are settled. The same again is fine, others are refused.
    OrderNode.objects.filter(pk=order_node.pk).update(ready_at=timezone.now())
    assert client.post(path, form).status_code == 200
    other = {**form, "pub_key_ed25519": _host_key()}
    assert client.post(path, other).status_code == 400
    order_node.refresh_from_db()
    assert order_node.host_keys == {"ssh-ed25519": key}

    # The order ends: the URL no longer answers.
    Order.objects.filter(pk=order_node.order_id).update(state=OrderState.TERMINATED)
    assert client.post(path, form).status_code == 404
