"""Ray clusters without the lab: the catalog card and the form order one, the API takes one,
the servers take the portal's key (it starts Ray through the jump host), the customer's keys
may open the head's Ray Client and dashboard ports through the jump host and nothing more,
`ray start` is built from the inventory's numbers only, and the dashboard is the tenant's
alone. The whole path against lab servers and real Ray: tests/e2e/test_order_ray.py."""

import json
import secrets

import pytest

from catalog.access import bastion_grants, server_public_keys
from catalog.metadata import user_data
from catalog.models import Order, OrderNode, OrderState
from catalog.offerings.ray import object_store_bytes, start_command
from catalog.services.products import product_upsert
from fabric.bastion import probe_public_key, render_authorized_keys
from fabric.models import NetworkSegment, TenantNetwork
from tests.catalog.lab import LAPTOP_KEY, bare_metal_lab, customer, with_key
from tests.fabric.factories import GPUFactory, NodeFactory, SiteFactory
from tests.portal.factories import member, organization_of

pytestmark = pytest.mark.django_db
H100 = "NVIDIA H100 80GB HBM3"


def _ray_product():
    return product_upsert(
        slug="ray-cluster", name="Ray cluster", kind="ray", summary="Head and workers."
    )


def _cluster(owner, *, state=OrderState.ACTIVE, addresses=("10.210.10.2", "10.210.10.3")):
    network = TenantNetwork.objects.create(
        organization=organization_of(owner), site=SiteFactory(), label="x",
        access_prefix="10.210.9.0/28",
    )  # fmt: skip
    NetworkSegment.objects.create(network=network, prefix="10.210.10.0/24", gateway="10.210.10.1")
    order = Order.objects.create(
        organization=organization_of(owner), created_by=owner, product=_ray_product(),
        offering="ray", spec={"gpu_model": H100, "nodes": len(addresses)}, hourly_quote=1,
        state=state, network=network,
    )  # fmt: skip
    for index, address in enumerate(addresses):
        OrderNode.objects.create(
            order=order, node=NodeFactory(gpu_model=H100, cpu_cores=224, memory_gb=2048),
            hostname=f"gpu{index}", address=address, metadata_nonce=secrets.token_hex(16),
        )  # fmt: skip
    return order


def test_the_card_offers_a_ray_cluster_and_the_form_and_the_api_order_one(
    client, switches, bmc_emulator
):
    bare_metal_lab(switches=switches, emulator=bmc_emulator, gpu_model=H100)
    _ray_product()
    user = customer()
    key = with_key(user)
    client.force_login(user)
    assert 'id="order-ray-cluster"' in client.get("/dashboard/").content.decode()
    form = client.get("/orders/new/ray-cluster/")
    assert form.status_code == 200 and 'name="gpu_model"' in form.content.decode()
    spec = {"gpu_model": H100, "nodes": 2, "topology": "any"}
    quoted = client.post("/orders/new/ray-cluster/", {**spec, "ssh_keys": [key.fingerprint]})
    assert quoted.context["quote"] > 0, quoted.context["form"].errors
    placed = client.post(
        "/api/v1/orders/", {"product": "ray-cluster", **spec}, content_type="application/json"
    )
    assert placed.status_code == 201, placed.content
    order = Order.objects.get()
    assert (order.offering, order.spec["nodes"], len(order.spec["ssh_keys"])) == ("ray", 2, 1)


def test_the_servers_take_the_portals_key_only_for_a_product_the_platform_runs():
    owner = member()
    with_key(owner)
    cluster = _cluster(owner)
    assert server_public_keys(order=cluster) == [LAPTOP_KEY, probe_public_key()]
    config = json.loads(user_data(cluster.nodes.first()).removeprefix("#cloud-config\n"))
    assert probe_public_key() in config["users"][0]["ssh_authorized_keys"]
    bare = Order.objects.create(
        organization=cluster.organization, created_by=owner, offering="bare_metal",
        product=product_upsert(slug="bare-metal", name="BM", kind="bare_metal", summary="-"),
        spec={"gpu_model": H100, "nodes": 1}, hourly_quote=1,
    )  # fmt: skip
    assert server_public_keys(order=bare) == [LAPTOP_KEY]


def test_the_customers_keys_may_open_the_heads_ray_ports_through_the_jump_host_and_no_more():
    owner = member()
    with_key(owner)
    cluster = _cluster(owner)
    targets = {"10.210.10.2", "10.210.10.3", "10.210.10.2:10001", "10.210.10.2:8265"}
    grants = bastion_grants(network=cluster.network)
    assert grants == {LAPTOP_KEY: targets, probe_public_key(): targets}
    line = render_authorized_keys({LAPTOP_KEY: grants[LAPTOP_KEY]})
    assert line.startswith(
        'restrict,port-forwarding,permitopen="10.210.10.2:22",permitopen="10.210.10.2:8265",'
        'permitopen="10.210.10.2:10001",permitopen="10.210.10.3:22" '
    )
    assert "10.210.10.3:8265" not in line and "10.210.10.3:10001" not in line  # workers: SSH


def test_ray_start_is_built_from_the_inventorys_numbers_and_ipams_addresses(settings):
    settings.RAY_PYTHON = "/opt/ray/bin/python"
    settings.RAY_MAX_CPUS = 2
    settings.RAY_OBJECT_STORE_MAX_BYTES = 100 * 2**20
    head, worker = _cluster(member()).nodes.select_related("node").order_by("pk")
    for index in range(2):
        GPUFactory(node=head.node, index=index)
    command = start_command(head, head_address=None)
    assert command.startswith('export PATH=/opt/ray/bin:"$PATH"; ')
    assert (
        "/opt/ray/bin/python -m ray.scripts.scripts start --node-ip-address=10.210.10.2 "
        "--num-cpus=2 --num-gpus=2 --object-store-memory=104857600 "
        "--disable-usage-stats --head --port=6379 --ray-client-server-port=10001 "
        "--dashboard-host=0.0.0.0 --dashboard-port=8265 </dev/null"
    ) in command
    joined = start_command(worker, head_address="10.210.10.2")
    assert "--node-ip-address=10.210.10.3" in joined and "--address=10.210.10.2:6379" in joined
    assert "--head" not in joined
    settings.RAY_OBJECT_STORE_MAX_BYTES = 200 * 2**30
    assert object_store_bytes(2048) == 200 * 2**30  # capped
    assert object_store_bytes(64) == int(64 * 2**30 * 0.3)  # 30 % of the server's memory
    assert object_store_bytes(0) == 78_643_200  # Ray's lower bound


def test_the_dashboard_is_the_tenants_alone_and_says_when_the_cluster_is_not_running(client):
    owner, stranger = member(), member()
    cluster = _cluster(owner, state=OrderState.LAUNCHING)
    client.force_login(stranger)
    assert client.get(f"/orders/{cluster.pk}/ray/").status_code == 404
    client.force_login(owner)
    answer = client.get(f"/orders/{cluster.pk}/ray/api/version")
    assert answer.status_code == 503 and answer.content == b"The cluster is not running."
    assert client.get(f"/orders/{cluster.pk}/ray/../x").status_code in (404, 503)


def test_only_a_running_cluster_adds_or_removes_workers_and_its_head_stays(client):
    owner = member()
    with_key(owner)
    starting = _cluster(owner, state=OrderState.LAUNCHING)
    client.force_login(owner)
    answer = client.post(
        f"/api/v1/orders/{starting.pk}/workers/", {"change": "add"}, "application/json"
    )
    assert answer.status_code == 400 and "Only a running Ray cluster" in str(answer.json())
    alone = _cluster(owner, addresses=("10.210.10.2",))
    answer = client.post(
        f"/api/v1/orders/{alone.pk}/workers/", {"change": "remove"}, "application/json"
    )
    assert answer.status_code == 400 and "its head stays" in str(answer.json())
    wrong = client.post(f"/api/v1/orders/{alone.pk}/workers/", {"change": "x"}, "application/json")
    assert wrong.status_code == 400 and "change" in wrong.json()
    page = client.get(f"/orders/{alone.pk}/").content.decode()
    assert 'id="add-worker"' in page and 'id="remove-worker"' in page
    stranger = member()
    client.force_login(stranger)
    assert client.post(f"/orders/{alone.pk}/workers/add/").status_code == 404
