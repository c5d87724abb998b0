"""Cleaning (fabric.services.cleaning): a server given back boots its cleaning job from the
portal's iPXE script, whose signed report URL finishes the cleaning; a failed report, a timeout
or a server that cannot be booted sends it to maintenance, never to the pool. The lab test that
erases a real lab server's disk is in test_lab_boot.py."""

import re

import pytest

import fabric.tasks
from fabric.models import Node, NodeState
from fabric.services.cleaning import (
    cleaning_event,
    cleaning_report_url,
    node_clean_expire,
    node_clean_start,
)
from fabric.services.placement import hand_nodes
from fabric.services.provisioning import provisioning_addresses_sync
from portal.celery import app as celery_app
from portal.services.audit import Actor
from tests.fabric.test_provisioning import (
    MACS,
    PORTAL,
    _inventory,
    _reserved,
    provisioning_settings,  # noqa: F401  (fixture)
)
from tests.portal.factories import member, organization_of

ACTOR = Actor.system()


def _given_back(node: Node) -> Node:
    """The node was a tenant's and is given back (as an allocation's release does)."""
    Node.objects.filter(pk=node.pk).update(state=NodeState.AVAILABLE)
    node.refresh_from_db()
    hand_nodes([node], to=organization_of(member()), actor=ACTOR)
    hand_nodes([node], to=None, actor=ACTOR)
    node.refresh_from_db()
    assert node.state == NodeState.CLEANING and node.organization is None
    return node


@pytest.mark.django_db
def test_a_server_in_cleaning_boots_its_cleaning_job_whose_report_finishes_it(
    provisioning_settings,  # noqa: F811
    client,
):
    nodes = _inventory()
    provisioning_addresses_sync(actor=ACTOR)
    a = str(_reserved("gpu-a").address)
    node = _given_back(nodes["gpu-a"])
    script = client.get(f"/provisioning/ipxe/{MACS['gpu-a']}", REMOTE_ADDR=a).content.decode()
    report = cleaning_report_url(node=node)
    assert report.startswith(f"{PORTAL}/provisioning/cleaned/")
    kernel = re.search(r"^kernel \S+ .*$", script, re.M).group(0)
    assert "storefront.clean=1" in kernel.split() and f"storefront.report={report}" in kernel
    assert "ds=nocloud" not in script  # nothing of a tenant goes to a server being cleaned

    path = report.removeprefix(PORTAL)
    assert client.post(path[:-6] + "xx" + path[-4:], {"status": "cleaned"}).status_code == 404
    assert client.get(path).status_code == 405
    answer = client.post(path, {"status": "failed", "detail": "shred: /dev/nvme1n1: I/O error"})
    assert answer.status_code == 200 and answer.content == b"maintenance\n"
    node.refresh_from_db()
    assert node.state == NodeState.MAINTENANCE
    assert node.events.latest("pk").detail == "cleaning failed: shred: /dev/nvme1n1: I/O error"
    assert client.post(path, {"status": "cleaned"}).status_code == 409  # that cleaning is over
    node.refresh_from_db()
    assert node.state == NodeState.MAINTENANCE

    # gpu-c has no BMC: cleaned by hand, its report (an operator's) puts it back in the pool.
    other = _given_back(nodes["gpu-c"])
    answer = client.post(
        cleaning_report_url(node=other).removeprefix(PORTAL), {"status": "cleaned"}
    )
    assert answer.status_code == 200 and answer.content == b"available\n"
    other.refresh_from_db()
    assert other.state == NodeState.AVAILABLE
    assert other.events.latest("pk").detail == "cleaned: the job erased the disks"


@pytest.mark.django_db
def test_a_cleaning_that_cannot_start_or_never_reports_ends_in_maintenance(
    provisioning_settings,  # noqa: F811
):
    nodes = _inventory()
    # No BMC: the cleaning job cannot be booted.
    unbootable = _given_back(nodes["gpu-c"])
    assert node_clean_start(node=unbootable, actor=ACTOR) is None
    unbootable.refresh_from_db()
    assert unbootable.state == NodeState.MAINTENANCE
    assert "cannot boot the cleaning job" in unbootable.events.latest("pk").detail

    # The task's timeout: only the cleaning it was started for, and only while it lasts.
    node = _given_back(nodes["gpu-b"])
    event = cleaning_event(node)
    assert node_clean_expire(node=node, event_id=event.pk - 1, actor=ACTOR) is None
    node.refresh_from_db()
    assert node.state == NodeState.CLEANING
    conf = celery_app.conf
    before = conf.task_always_eager, conf.task_eager_propagates
    conf.task_always_eager = conf.task_eager_propagates = True
    try:
        assert fabric.tasks.node_clean_expire.delay(node.pk, event.pk).get() == "maintenance"
    finally:
        conf.task_always_eager, conf.task_eager_propagates = before
    node.refresh_from_db()
    assert node.state == NodeState.MAINTENANCE
    assert re.fullmatch(
        r"cleaning failed: no cleaning report within \d+ s", node.events.latest("pk").detail
    )
    assert cleaning_report_url(node=node) is None
