"""The bare-metal order form: an SSH key is required (one of the orderer's, or one added on the
form, saved through the SSH-key service once the order validates); a site may be chosen and
placement honours it; more servers than exist is refused with how many do, and more than are
free is quoted with the queue position and an estimated start."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from catalog.metadata import user_data
from catalog.models import Order, OrderNode
from catalog.offerings import offering_for
from fabric.capacity.engine import NodeCap, Request, Snapshot
from fabric.models import Bmc, Node, Site
from fabric.selectors.capacity import queue_preview
from fabric.services.allocations import allocation_release, allocation_request
from fabric.services.cleaning import node_clean_finish
from fabric.services.placement import nodes_of
from fabric.services.queue import queue_process
from portal.models import SshKey
from portal.services.audit import Actor
from tests.catalog.lab import GPU_MODEL, LAPTOP_KEY, bare_metal_lab, customer, with_key
from tests.portal.factories import organization_of

pytestmark = pytest.mark.django_db
OTHER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOq5EOkoejhexMTc9rd02FgHWBuiVY9RILuRX1v4znvC"
SPEC = {"gpu_model": GPU_MODEL, "nodes": 1, "topology": "any"}


@pytest.fixture
def lab(switches, bmc_emulator):
    return bare_metal_lab(switches=switches, emulator=bmc_emulator)  # 4 servers at one site


def url(lab) -> str:
    return f"/orders/new/{lab[2].slug}/"


def second_site(lab, count: int = 2) -> str:
    """Move `count` of the lab's servers to a site of their own; its name."""
    site = Site.objects.create(name=f"{lab[0].name}-b")
    Node.objects.filter(pk__in=[n.pk for n in lab[1][:count]]).update(site=site)
    return site.name


def test_a_customer_without_a_key_is_asked_to_add_one_on_the_page_and_by_the_api(client, lab):
    user = customer()
    client.force_login(user)
    page = client.get(url(lab)).content.decode()
    assert 'id="no-ssh-keys"' in page and 'name="new_key"' in page
    answer = client.post(url(lab), SPEC)
    assert answer.context["quote"] is None
    assert answer.context["form"].errors["new_key"] == [
        "Add an SSH key: bare-metal servers are reached with keys only."
    ]
    api = client.post(
        "/api/v1/orders/", {"product": "bare-metal", **SPEC}, content_type="application/json"
    )
    assert api.status_code == 400
    assert api.json() == {
        "ssh_keys": ["Add an SSH key first: bare-metal servers are reached with keys only."]
    }
    key = with_key(user)
    unknown = client.post(
        "/api/v1/orders/",
        {"product": "bare-metal", **SPEC, "ssh_keys": ["SHA256:not-mine"]},
        content_type="application/json",
    )
    assert (
        unknown.status_code == 400 and "Not one of your SSH keys" in unknown.json()["ssh_keys"][0]
    )
    assert not Order.objects.exists()
    placed = client.post(
        "/api/v1/orders/", {"product": "bare-metal", **SPEC}, content_type="application/json"
    )
    assert placed.status_code == 201, placed.content
    assert placed.json()["spec"]["ssh_keys"] == [key.fingerprint]  # omitted: all of theirs


def test_a_key_added_on_the_form_is_saved_chosen_and_the_only_one_the_servers_take(client, lab):
    user = customer()
    with_key(user, OTHER_KEY, name="old")
    client.force_login(user)
    quoted = client.post(url(lab), {**SPEC, "new_key": LAPTOP_KEY, "new_key_name": "laptop"})
    assert quoted.context["quote"] is not None
    key = SshKey.objects.get(user=user, name="laptop")
    assert "Saved your key laptop" in quoted.content.decode()
    form = quoted.context["form"]
    assert form["ssh_keys"].value() == [key.fingerprint] and form["new_key"].value() == ""
    assert not Order.objects.exists()

    placed = client.post(
        url(lab), {**SPEC, "ssh_keys": [key.fingerprint], "confirm": str(quoted.context["quote"])}
    )
    order = Order.objects.get()
    assert placed.status_code == 302 and order.spec["ssh_keys"] == [key.fingerprint]
    node = OrderNode.objects.create(order=order, node=lab[1][0], hostname="n1", metadata_nonce="x")
    config = user_data(node)
    assert LAPTOP_KEY in config and OTHER_KEY not in config  # the old key was not chosen


def test_invalid_key_text_is_an_error_on_the_field_and_nothing_is_saved(client, lab):
    user = customer()
    client.force_login(user)
    answer = client.post(url(lab), {**SPEC, "new_key": "ssh-ed25519 not-a-key", "new_key_name": ""})
    assert answer.context["quote"] is None and not SshKey.objects.filter(user=user).exists()
    (error,) = answer.context["form"].errors["new_key"]
    assert "does not decode" in error or "Paste one public key line" in error
    assert 'id="new-key-error"' in answer.content.decode()


def test_the_site_is_offered_and_placement_puts_every_server_there(client, lab):
    user = customer()
    key = with_key(user)
    client.force_login(user)
    site = second_site(lab)
    choices = dict(client.get(url(lab)).context["form"].fields["site"].choices)
    assert choices[site] == f"{site} (2 × {GPU_MODEL})" and choices[""] == "Any site"
    spec = {**SPEC, "nodes": 2, "site": site, "ssh_keys": [key.fingerprint]}
    quoted = client.post(url(lab), spec)
    placed = client.post(url(lab), {**spec, "confirm": str(quoted.context["quote"])})
    assert placed.status_code == 302
    order = Order.objects.get()
    assert order.spec["site"] == site
    offering_for("bare_metal")._allocate(order, lambda **_: None)
    order.refresh_from_db()
    assert {n.site.name for n in nodes_of(order.allocation)} == {site}


def test_a_site_places_now_or_never_and_the_engine_filters_candidates_by_site():
    def cap(node_id, site):
        return NodeCap(id=node_id, model="M", gpu_ids=(node_id,), domains=("l", "g", "i", site))

    snap = Snapshot([cap(1, "a"), cap(2, "a"), cap(3, "b")])
    assert snap.place(Request("M", 1, site="b")).whole_nodes == (3,)
    assert snap.place(Request("M", 2, site="b")) is None
    assert set(snap.place(Request("M", 2, site="a")).whole_nodes) == {1, 2}
    assert snap.free_nodes_at("M", "a") == 2 and snap.free_nodes("M") == 3


def test_a_site_request_that_cannot_start_there_now_waits_and_starts_there(lab):
    site = second_site(lab)  # 2 servers there, 2 elsewhere
    user = customer()
    args = {
        "organization": organization_of(user), "shape": "node", "gpu_model": GPU_MODEL,
        "actor": Actor(user=user), "needs_bmc": True,
    }  # fmt: skip
    first = allocation_request(**args, count=2, site=site)
    assert first.state == "active" and {n.site.name for n in nodes_of(first)} == {site}
    waiting = allocation_request(**args, count=1, site=site)
    assert waiting.state == "queued" and waiting.site == site  # 2 free elsewhere: not for it
    held = nodes_of(first)
    allocation_release(allocation=first, actor=Actor(user=user))
    for node in held:  # cleaned (what the cleaning job reports), then back in the pool
        node_clean_finish(node=node, ok=True, detail="cleaned", actor=Actor.system())
    queue_process(gpu_model=GPU_MODEL)  # what the cleaning's task runs once it commits
    waiting.refresh_from_db()
    assert waiting.state == "active" and {n.site.name for n in nodes_of(waiting)} == {site}


def test_more_servers_than_exist_is_refused_with_how_many_do(client, lab):
    user = customer()
    key = with_key(user)
    client.force_login(user)
    answer = client.post(url(lab), {**SPEC, "nodes": 5, "ssh_keys": [key.fingerprint]})
    assert answer.context["form"].errors["nodes"] == [
        f"Only 4 {GPU_MODEL} server(s) exist; order at most 4."
    ]
    site = second_site(lab)
    answer = client.post(
        url(lab), {**SPEC, "nodes": 3, "site": site, "ssh_keys": [key.fingerprint]}
    )
    assert answer.context["form"].errors["nodes"] == [
        f"Only 2 {GPU_MODEL} server(s) exist at {site}; order at most 2."
    ]
    api = client.post(
        "/api/v1/orders/", {"product": "bare-metal", **SPEC, "nodes": 5}, "application/json"
    )
    assert api.status_code == 400 and "Only 4" in api.json()["nodes"][0]
    assert not Order.objects.exists()


@pytest.mark.parametrize("lease", [timedelta(hours=2), None])
def test_more_servers_than_are_free_is_quoted_with_the_queue_position_and_start(client, lab, lease):
    other = customer()
    held = allocation_request(
        organization=organization_of(other), shape="node", gpu_model=GPU_MODEL, count=3,
        actor=Actor(user=other), lease=lease,
    )  # fmt: skip
    user = customer()
    key = with_key(user)
    client.force_login(user)
    answer = client.post(url(lab), {**SPEC, "nodes": 2, "ssh_keys": [key.fingerprint]})
    assert answer.context["standing"]["queued"] and answer.context["standing"]["free"] == 1
    page = answer.content.decode()
    assert "Queued: position 1" in page and 'id="queue-standing"' in page
    if lease:
        assert f"estimated start {held.ends_at:%Y-%m-%d %H:%M} UTC" in page
    else:
        assert "no estimate yet" in page
    one = client.post(url(lab), {**SPEC, "nodes": 1, "ssh_keys": [key.fingerprint]})
    assert not one.context["standing"]["queued"] and "Starts now: 1 free" in one.content.decode()
    site = lab[0].name  # every server is at the lab's site
    there = client.post(url(lab), {**SPEC, "nodes": 2, "site": site, "ssh_keys": [key.fingerprint]})
    assert there.context["standing"]["queued"] and there.context["standing"]["free"] == 1
    assert "Queued: position 1" in there.content.decode()  # it waits for servers there


def test_the_engine_gives_bare_metal_only_servers_with_a_bmc():
    def cap(node_id, bmc):
        return NodeCap(id=node_id, model="M", gpu_ids=(node_id,), domains=("l", "g", "i", "a"),
                       bmc=bmc)  # fmt: skip

    snap = Snapshot([cap(1, False), cap(2, True), cap(3, True)])
    assert set(snap.place(Request("M", 2, bmc=True)).whole_nodes) == {2, 3}
    assert snap.place(Request("M", 3, bmc=True)) is None
    assert len(snap.place(Request("M", 3)).whole_nodes) == 3  # any node, for other uses


def test_a_bare_metal_allocation_takes_servers_with_a_bmc_and_waits_for_them(lab):
    _, nodes, _ = lab
    Bmc.objects.filter(node=nodes[0]).delete()  # its power is not the platform's
    user = customer()
    args = {"organization": organization_of(user), "shape": "node", "gpu_model": GPU_MODEL}
    allocation = allocation_request(**args, count=3, actor=Actor(user=user), needs_bmc=True)
    assert allocation.state == "active" and allocation.needs_bmc
    assert nodes[0] not in nodes_of(allocation)
    waiting = allocation_request(**args, count=1, actor=Actor(user=user), needs_bmc=True)
    assert waiting.state == "queued"  # nodes[0] is free, but cannot be sold as bare metal
    with pytest.raises(ValidationError):
        allocation_request(**{**args, "shape": "gpu"}, count=1, actor=Actor(user=user),
                           needs_bmc=True)  # fmt: skip


def test_the_queue_preview_of_bare_metal_counts_only_servers_with_a_bmc(lab):
    _, nodes, _ = lab
    Bmc.objects.filter(node__in=nodes[:2]).delete()
    assert queue_preview(gpu_model=GPU_MODEL, nodes=2, units=14, needs_bmc=True)["free"] == 2
    assert queue_preview(gpu_model=GPU_MODEL, nodes=3, units=21, needs_bmc=True)["queued"]
    assert queue_preview(gpu_model=GPU_MODEL, nodes=3, units=21)["free"] == 4
