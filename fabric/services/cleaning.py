"""Cleaning, like Ironic's automated cleaning: a node a tenant held is erased before it is
placeable again. Giving whole nodes back (fabric.services.placement.hand_nodes) puts them in
cleaning and, once that commits, starts the `fabric.tasks.node_clean` task:

1. `node_clean_start`: power the server off and on again, booting over PXE. The portal's iPXE
   script for a node in cleaning (fabric.services.provisioning) boots the cleaning job instead
   of an OS: its kernel line says `storefront.clean=1` and names the signed report URL
   (`cleaning_report_url`). The job erases the server's disks and POSTs its report there (the
   lab's stand-in, fabric/testbed/servers/boot.py, erases the lab disk).
2. `node_clean_report` (the report URL's view): `cleaned` finishes the cleaning; anything else
   is a failed cleaning.
3. `node_clean_finish`: ok -> the server is powered off (when it has a BMC: one without is
   cleaned by hand) and goes back to available, and the queue of its model runs; not ok ->
   maintenance, with the reason on the node's event. A server that cannot be cleaned (no BMC,
   power refused) and one whose report does not arrive within NODE_CLEANING_TIMEOUT_SECONDS
   (`node_clean_expire`) go to maintenance too: never to the pool with the last tenant's disk.

A report or a timeout belongs to one cleaning: the event that put the node in cleaning. A late
report of an earlier cleaning, or a timeout of one, changes nothing."""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.db import transaction

from fabric.errors import PowerFatal, PowerTransient
from fabric.models import Allocation, AllocationState, Bmc, Node, NodeEvent, NodeState
from fabric.services.changes import change_records_bulk, snapshot
from fabric.services.power import node_power_off, node_power_on
from fabric.states import node_transition
from portal.celery import task
from portal.services.audit import Actor

CLEANING = NodeState.CLEANING
REPORT_PATH = "/provisioning/cleaned/"
_SALT = "fabric.cleaning.report"


def cleaning_event(node: Node) -> NodeEvent | None:
    """The event that started the node's current cleaning (None: it is not cleaning)."""
    if node.state != CLEANING:
        return None
    return node.events.filter(to_state=CLEANING).order_by("-pk").first()


def cleaning_report_url(*, node: Node) -> str | None:
    """The signed URL the cleaning job of `node`'s current cleaning reports to."""
    event = cleaning_event(node)
    if event is None:
        return None
    token = signing.dumps({"node": node.pk, "event": event.pk}, salt=_SALT, compress=True)
    return settings.PROVISIONING_PORTAL_URL.rstrip("/") + REPORT_PATH + token + "/"


def _save(before, node: Node, actor: Actor) -> None:
    change_records_bulk(actor=actor, updated=[(before, node)])


@transaction.atomic
def node_clean_finish(*, node: Node, ok: bool, detail: str, actor: Actor) -> NodeEvent | None:
    """End the node's cleaning: available when `ok` (once it is powered off: a server left on
    in its cleaning job would not boot the next tenant's order), else maintenance with
    `detail`. None when the node is not cleaning (already finished)."""
    locked = Node.objects.select_for_update().get(pk=node.pk)
    if locked.state != CLEANING:
        return None
    before = snapshot(locked)
    if ok and Bmc.objects.filter(node=locked).exists():  # cleaned by hand: nothing to power off
        try:
            node_power_off(node=locked)
        except (PowerTransient, PowerFatal) as exc:
            ok, detail = False, f"cleaned, but powering it off failed: {exc}"
    to = NodeState.AVAILABLE if ok else NodeState.MAINTENANCE
    prefix = "cleaned" if ok else "cleaning failed"
    event = node_transition(
        node=locked, to=to, actor=actor.label, detail=f"{prefix}: {detail}" if detail else prefix
    )
    _save(before, locked, actor)
    node.state = locked.state
    if ok:
        _on_commit_process_queue(locked.gpu_model)
    return event


def _on_commit_process_queue(gpu_model: str) -> None:
    """A node back in the pool may start what waits for its model."""
    if Allocation.objects.filter(state=AllocationState.QUEUED, gpu_model=gpu_model).exists():
        transaction.on_commit(lambda: task("fabric.tasks.queue_process").delay(gpu_model))


def node_clean_start(*, node: Node, actor: Actor) -> NodeEvent | None:
    """Boot the node into its cleaning job (power off, then on over PXE). Returns the cleaning's
    event (the task times it out from there), or None when there is nothing to wait for: the
    node is not cleaning, or cannot be cleaned (no BMC, the BMC refuses), which sends it to
    maintenance. A BMC that may answer later raises PowerTransient: the task retries."""
    locked = Node.objects.get(pk=node.pk)
    event = cleaning_event(locked)
    if event is None:
        return None
    try:
        node_power_off(node=locked)
        node_power_on(node=locked, pxe=True)
    except PowerFatal as exc:
        node_clean_finish(node=locked, ok=False, detail=f"cannot boot the cleaning job: {exc}",
                          actor=actor)  # fmt: skip
        return None
    return event


def node_clean_expire(*, node: Node, event_id: int, actor: Actor) -> NodeEvent | None:
    """The cleaning started by `event_id` had its time: if it is still the node's cleaning, no
    report came; maintenance."""
    locked = Node.objects.get(pk=node.pk)
    event = cleaning_event(locked)
    if event is None or event.pk != event_id:
        return None
    return node_clean_finish(
        node=locked,
        ok=False,
        detail=f"no cleaning report within {settings.NODE_CLEANING_TIMEOUT_SECONDS} s",
        actor=actor,
    )


def node_clean_report(*, token: str, status: str, detail: str = "") -> NodeEvent | None:
    """The cleaning job's report (the signed URL's token). Raises signing.BadSignature for a
    forged token; None for a report of a cleaning that is not the node's current one."""
    claim = signing.loads(token, salt=_SALT)
    node = Node.objects.filter(pk=claim.get("node")).first()
    if node is None:
        return None
    event = cleaning_event(node)
    if event is None or event.pk != claim.get("event"):
        return None
    actor = Actor.system()
    ok = status == "cleaned"
    detail = detail[:200] or ("the job erased the disks" if ok else f"the job said {status!r}")
    return node_clean_finish(node=node, ok=ok, detail=detail, actor=actor)
