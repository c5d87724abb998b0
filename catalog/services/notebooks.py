"""Idle culling: a notebook with no activity (kernels, terminals, the browser — as JupyterHub
records it) for its idle limit is stopped, which frees its GPU and ends its billing."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from catalog.models import Order, OrderState
from catalog.notebooks import hub
from catalog.offerings.notebook import idle_limits, server_name
from catalog.services.orders import order_terminate
from portal.services.audit import Actor


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
