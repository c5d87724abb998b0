"""Running notebooks: admission (may this server start? JupyterHub's pre-spawn hook asks for
every start, so the hub's own UI cannot go around the portal: only a server the portal launched
for a live order may start, and only while its organization, and course, may still spend),
restart (the server stopped and started again on the same GPU), and idle culling: a notebook
with no activity (kernels, terminals, the browser — as JupyterHub records it) for its idle limit
is stopped, which frees its GPU and ends its billing."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from catalog.errors import StepTransient
from catalog.models import Order, OrderState
from catalog.notebooks import hub
from catalog.offerings import offering_for
from catalog.offerings.notebook import idle_limits, server_name
from catalog.services.orders import order_terminate
from portal.celery import task
from portal.services.audit import Actor, audit_record

SERVER_NAME = re.compile(r"^o(\d+)$")
USER_NAME = re.compile(r"^u(\d+)$")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    message: str = ""
    environment: dict = field(default_factory=dict)


def notebook_admission(*, hub_user: str, server: str) -> Decision:
    user, named = USER_NAME.match(hub_user), SERVER_NAME.match(server)
    if not user or not named:
        return Decision(False, "Launch notebooks from the storefront.")
    order = (
        Order.objects.filter(pk=int(named[1]), created_by_id=int(user[1]), offering="notebook")
        .select_related("organization", "allocation")
        .first()
    )
    if order is None:
        return Decision(False, "Launch notebooks from the storefront.")
    if order.state not in (OrderState.LAUNCHING, OrderState.ACTIVE):  # ACTIVE: a restart
        return Decision(False, "This notebook has ended; launch a new one from the storefront.")
    refusal = offering_for(order.offering).refusal(order)
    if refusal:
        return Decision(False, refusal)
    return Decision(True, environment=offering_for(order.offering).environment(order))


def notebook_restart(*, order: Order, actor: Actor) -> None:
    """Restart a running notebook (a stuck kernel, new packages): done by a task; the order
    stays active and keeps its GPU."""
    if order.offering != "notebook" or order.state != OrderState.ACTIVE:
        raise ValidationError("Only a running notebook can be restarted.")
    audit_record(
        actor=actor,
        organization=order.organization,
        action="notebook.restart",
        target=str(order),
    )
    task("catalog.tasks.notebook_restart").delay(order.pk)


def notebook_restart_run(*, order_id: int, timeout: float = 120) -> bool:
    """Stop the notebook's server and start it again; whether it came back within `timeout`.
    A hub that does not answer is StepTransient (the task tries again)."""
    try:
        return _restart(Order.objects.get(pk=order_id), timeout)
    except hub.HubUnavailable as exc:
        raise StepTransient(str(exc)) from exc


def _restart(order: Order, timeout: float) -> bool:
    name, server = hub.hub_name(order.created_by_id), server_name(order)
    hub.server_stop(name, server)
    deadline = time.monotonic() + timeout
    while hub.server_state(name, server).exists and time.monotonic() < deadline:
        time.sleep(0.2)
    hub.server_start(name, server, {"profile": order.spec["profile"]})
    while not hub.server_state(name, server).ready:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def idle_minutes(order: Order) -> int:
    for limit in idle_limits:
        if (minutes := limit(order)) is not None:
            return minutes
    return settings.NOTEBOOK_IDLE_MINUTES


def notebooks_cull(*, now: datetime | None = None) -> int:
    now = now or timezone.now()
    culled = 0
    for order in Order.objects.filter(offering="notebook", state=OrderState.ACTIVE):
        try:
            state = hub.server_state(hub.hub_name(order.created_by_id), server_name(order))
        except (hub.HubUnavailable, hub.HubRefused):
            continue  # asked again on the next run
        last = max(filter(None, [state.last_activity, order.ready_at]))
        limit = idle_minutes(order)
        if now - last >= timedelta(minutes=limit):
            order_terminate(
                order=order, actor=Actor.system("task"), reason=f"idle for {limit} minutes"
            )
            culled += 1
    return culled
