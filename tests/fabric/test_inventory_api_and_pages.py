"""The inventory API (operators write, tenants read what is theirs) and the operator pages,
each with a query count that does not grow with the fleet."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from fabric.models import GPU, ChangeRecord, Node, Rack, Site, Switch
from fabric.testbed.fleet import fleet_generate
from portal.services.audit import Actor
from tests.portal.factories import UserFactory, member, organization_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client):
    user = UserFactory(is_staff=True)
    client.force_login(user)
    return user


def _fleet(nodes_per_site=8, sites=1, seed=0):
    return fleet_generate(
        sites=sites, nodes_per_site=nodes_per_site, seed=seed, actor=Actor.system("task")
    )


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(ctx)


def test_given_a_generated_fleet_then_it_has_every_generation_rails_cables_and_spares():
    counts = _fleet(nodes_per_site=96, sites=1, seed=3)
    assert counts["Node"] == 96 + 1  # and the site's services host (its jump hosts)
    assert set(Node.objects.filter(role="server").values_list("node_type", flat=True)) == {
        "hgx-h100-8", "hgx-a100-8", "pcie-l40s-4",
    }  # fmt: skip
    services = Node.objects.get(role="services")
    assert not services.gpus.exists() and services.interfaces.get().cable_end.cable
    assert Switch.objects.filter(role="ib").values("rail").distinct().count() == 8
    assert Node.objects.filter(state="spare").exists()
    assert ChangeRecord.objects.filter(via="task").count() == sum(counts.values())
    # every NIC is cabled, and InfiniBand NICs go to their rail's leaf
    from fabric.models import CableEnd, NetworkInterface

    assert CableEnd.objects.filter(side="a").count() == NetworkInterface.objects.count()
    end = CableEnd.objects.filter(interface__kind="infiniband").select_related("interface").first()
    peer = end.cable.ends.get(side="b").port.switch
    assert peer.rail == end.interface.rail


def test_operator_creates_updates_and_deletes_through_the_api_and_each_is_logged(client, operator):
    response = client.post("/api/v1/inventory/sites/", {"name": "dc42", "region": "eu"})
    assert response.status_code == 201, response.json()
    site_id = response.json()["id"]
    response = client.patch(
        f"/api/v1/inventory/sites/{site_id}/", {"region": "us"}, content_type="application/json"
    )
    assert response.json()["region"] == "us"
    rack = client.post(
        "/api/v1/inventory/racks/", {"site": "dc42", "name": "r1", "u_height": 42}
    ).json()
    node = {
        "name": "n1", "serial": "X1", "vendor": "v", "model": "m", "node_type": "t",
        "site": "dc42", "rack": rack["id"], "rack_position": 1, "rack_units": 2,
    }  # fmt: skip
    assert client.post("/api/v1/inventory/nodes/", node).status_code == 201
    clash = client.post("/api/v1/inventory/nodes/", {**node, "name": "n2", "serial": "X2"})
    assert clash.status_code == 400  # the same rack units
    history = client.get(f"/api/v1/inventory/changes/?content_type__model=site&object_id={site_id}")
    assert [c["action"] for c in history.json()["results"]] == ["update", "create"]
    assert client.delete(f"/api/v1/inventory/racks/{rack['id']}/").status_code == 400  # in use
    assert ChangeRecord.objects.filter(via="api", actor=operator).count() == 4


def test_api_filters_search_and_orders(client, operator):
    _fleet(nodes_per_site=40)
    spare = Node.objects.filter(state="spare").values_list("name", flat=True)
    listed = client.get("/api/v1/inventory/nodes/?state=spare&limit=500").json()
    assert sorted(n["name"] for n in listed["results"]) == sorted(spare)
    gpu = GPU.objects.select_related("node").first()
    found = client.get(f"/api/v1/inventory/nodes/?search={gpu.uuid}").json()["results"]
    assert [n["name"] for n in found] == [gpu.node.name]
    listed = client.get("/api/v1/inventory/nodes/?ordering=-name").json()["results"]
    names = [n["name"] for n in listed]
    assert names == sorted(names, reverse=True)


def test_a_tenant_reads_only_what_is_allocated_to_it_and_writes_nothing(client):
    _fleet(nodes_per_site=8)
    tenant = member()
    mine = Node.objects.first()
    mine.organization = organization_of(tenant)
    mine.save()
    client.force_login(tenant)
    nodes = client.get("/api/v1/inventory/nodes/").json()["results"]
    assert [n["name"] for n in nodes] == [mine.name]
    assert "bmc_address" not in nodes[0]
    gpus = client.get("/api/v1/inventory/gpus/?limit=100").json()["results"]
    assert {g["node"] for g in gpus} == {mine.name}
    assert client.get("/api/v1/inventory/switches/").json()["results"] == []
    other = Node.objects.exclude(pk=mine.pk).first()
    assert client.get(f"/api/v1/inventory/nodes/{other.pk}/").status_code == 404
    assert client.post("/api/v1/inventory/sites/", {"name": "x"}).status_code == 403
    assert client.get("/operator/").status_code == 302  # operator pages need staff


@pytest.mark.parametrize(
    "url",
    [
        "/operator/",
        "/operator/nodes/",
        "/operator/nodes/?state=available&q=dc",
        "/operator/racks/",
        "/operator/switches/",
        "/operator/drift/",
        "/api/v1/inventory/nodes/",
        "/api/v1/inventory/gpus/",
        "/api/v1/inventory/interfaces/",
        "/api/v1/inventory/cables/",
        "/api/v1/inventory/switches/",
    ],
)
def test_list_pages_run_the_same_number_of_queries_at_any_fleet_size(client, operator, url):
    _fleet(nodes_per_site=8, seed=1)
    small = _queries(client, url)
    _fleet(nodes_per_site=64, seed=2)
    assert _queries(client, url) == small


def test_node_detail_rack_elevation_and_history_pages_use_fixed_queries(client, operator):
    _fleet(nodes_per_site=8)
    h100 = Node.objects.filter(node_type="hgx-h100-8").first()
    a_rack = Rack.objects.first()
    pages = [
        f"/operator/nodes/{h100.pk}/",
        f"/operator/racks/{a_rack.pk}/",
        f"/operator/history/node/{h100.pk}/",
    ]
    counts = {url: _queries(client, url) for url in pages}
    page = client.get(pages[0]).content.decode()
    assert "GPU7" in page and h100.gpus.first().uuid in page
    assert "-ib-l1-rail0:p" in page  # the far end of the cable
    elevation = client.get(pages[1]).content.decode()
    assert all(n.name in elevation for n in a_rack.nodes.all())
    assert counts[pages[0]] <= 16 and counts[pages[1]] <= 8 and counts[pages[2]] <= 8


def test_the_fleet_summary_counts_gpus_by_site_model_and_state(client, operator):
    _fleet(nodes_per_site=40, sites=2)
    page = client.get("/operator/").content.decode()
    assert f"Fleet: {GPU.objects.count()} GPUs" in page
    for site in Site.objects.all():
        assert site.name in page


def test_operator_issues_agent_tokens_in_the_console_and_they_work(client, operator):
    import re

    from fabric.services.agent import node_authenticate_agent

    _fleet(nodes_per_site=8)
    operator.is_superuser = True
    operator.save()
    nodes = list(Node.objects.order_by("pk")[:2])
    page = client.post(
        "/admin/fabric/node/",
        {"action": "issue_agent_tokens", "_selected_action": [n.pk for n in nodes]},
    ).content.decode()
    tokens = re.findall(r"<code>(sfn_[^<]+)</code>", page)
    assert [node_authenticate_agent(t) for t in tokens] == nodes
    assert not any(t in str(ChangeRecord.objects.values_list("after", flat=True)) for t in tokens)
