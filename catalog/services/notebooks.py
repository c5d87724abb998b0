"""Running notebooks: restart (the server stopped and started again on the same GPU), and idle
culling: a notebook with no activity (kernels, terminals, the browser — as JupyterHub records
it) for its idle limit is stopped, which frees its GPU and ends its billing."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from catalog.models import Order, OrderState
from catalog.notebooks import hub
from catalog.offerings.notebook import idle_limits, server_name
from catalog.services.orders import order_terminate
from portal.services.audit import Actor, audit_record


def notebook_restart(*, order: Order, actor: Actor) -> None:
    """Restart a running notebook (a stuck kernel, new packages): done by a task; the order
    stays active and keeps its GPU."""
    from django.core.exceptions import ValidationError

    from catalog.tasks import notebook_restart as task

    if order.offering != "notebook" or order.state != OrderState.ACTIVE:
        raise ValidationError("Only a running notebook can be restarted.")
    audit_record(
        actor=actor, organization=order.organization, action="notebook.restart",
        target=str(order),
    )  # fmt: skip
    task.delay(order.pk)


def notebook_restart_run(*, order_id: int, timeout: float = 120) -> bool:
    import time

    order = Order.objects.get(pk=order_id)
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
