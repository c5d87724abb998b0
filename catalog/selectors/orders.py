"""Reads of orders, always scoped to the caller's organization (another tenant's order is a
404, never a 403), and the snapshot the order page and the API show."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils import timezone

from catalog.models import Order, OrderState
from portal.models import Membership, User
from portal.permissions import ROLE_PERMISSIONS, Permission, has_permission


def order_list(*, membership: Membership) -> QuerySet[Order]:
    return Order.objects.filter(organization_id=membership.organization_id).select_related(
        "product"
    )


def order_list_for_course(*, organization_id: int, course_id: int) -> QuerySet[Order]:
    """The notebooks launched for a course (their spec names it), whoever launched them."""
    return Order.objects.filter(
        organization_id=organization_id, offering="notebook", spec__course=course_id
    ).select_related("allocation", "created_by")


def _visible_to(user: User):
    """Orders of organizations where the user's role may view, and the user's own orders (a
    course's students launch notebooks in an organization they are not members of)."""
    roles = [role for role, perms in ROLE_PERMISSIONS.items() if Permission.VIEW in perms]
    return Q(organization__memberships__user=user, organization__memberships__role__in=roles) | Q(
        created_by=user
    )


def order_get_for_user(*, user: User, order_id: int) -> Order:
    """For websockets, which follow an order whichever organization the browser selected."""
    try:
        return Order.objects.filter(_visible_to(user)).distinct().get(pk=order_id)
    except Order.DoesNotExist:
        raise Http404("No such order.") from None


def order_get_visible(*, user: User, membership: Membership | None, order_id: int) -> Order:
    """For pages: an order of the selected organization (if the role may view), or the user's
    own order; 404 for anything else."""
    mine = Q(created_by=user)
    if membership is not None and has_permission(membership, Permission.VIEW):
        mine |= Q(organization_id=membership.organization_id)
    try:
        return Order.objects.select_related("product").filter(mine).get(pk=order_id)
    except Order.DoesNotExist:
        raise Http404("No such order.") from None


def _when(moment) -> str | None:
    return moment.isoformat() if moment else None


# States in which the order is expected to move on by itself (a step runs or polls).
WORKING = frozenset(OrderState.values) - {
    OrderState.ACTIVE,
    OrderState.TERMINATED,
    OrderState.FAILED,
    OrderState.CANCELLED,
}

ENDED = frozenset({OrderState.TERMINATED, OrderState.FAILED, OrderState.CANCELLED})


def order_delay(order: Order) -> dict | None:
    """Why the order is not moving, for the tenant: the platform service a step is waiting
    on (recorded by the worker), or, when nothing was recorded, progress older than
    ORDER_DELAY_NOTICE_SECONDS in a working state (a worker that cannot even write that down).
    None while all is well."""
    if order.delayed_since:
        since, reason = order.delayed_since, order.delay_reason
    else:
        notice = timedelta(seconds=settings.ORDER_DELAY_NOTICE_SECONDS)
        if order.state not in WORKING or timezone.now() - order.updated_at < notice:
            return None
        since, reason = order.updated_at, "no progress reported"
    return {"since": _when(since), "reason": reason, "message": f"Delayed, retrying: {reason}."}


def _ended(order: Order, handover: dict) -> dict:
    """An order that ended shows its servers ended (powered off, given back for cleaning), not
    in the state they last reached."""
    if order.state in ENDED and isinstance(handover.get("nodes"), list):
        handover["nodes"] = [{**node, "state": "ended"} for node in handover["nodes"]]
    return handover


def order_snapshot(order: Order) -> dict:
    from catalog.metering import order_cost
    from catalog.offerings import offering_for

    return {
        "id": order.pk,
        "state": order.state,
        "state_label": order.get_state_display(),
        "message": order.message,
        "spec": order.spec,
        "hourly_quote": str(order.hourly_quote),
        "cost": str(order_cost(order=order)),
        "ready_at": _when(order.ready_at),
        "ended_at": _when(order.ended_at),
        "updated_at": _when(order.updated_at),
        "delay": order_delay(order),
        "steps": [
            {
                "key": step.key,
                "label": step.label,
                "state": step.state,
                "progress": step.progress,
                "detail": step.detail,
                "started_at": _when(step.started_at),
                "finished_at": _when(step.finished_at),
            }
            for step in order.steps.all()
        ],
        "handover": _ended(order, offering_for(order.offering).handover(order)),
        "events": [
            {
                "from": event.from_state,
                "to": event.to_state,
                "actor": event.actor,
                "detail": event.detail,
                "at": _when(event.created_at),
            }
            for event in order.events.all()
        ],
    }
