"""May this notebook server start? Asked by JupyterHub's pre-spawn hook for every start, so
the hub's own UI cannot go around the portal: only a server the portal launched for a live
order may start, and only while its organization (and course) may still spend."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from catalog.models import Order, OrderState

SERVER_NAME = re.compile(r"^o(\d+)$")
USER_NAME = re.compile(r"^u(\d+)$")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    message: str = ""
    environment: dict = field(default_factory=dict)


def notebook_admission(*, hub_user: str, server: str) -> Decision:
    from catalog.offerings import offering_for

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
