"""Reads of orders, always scoped to the caller's organization (another tenant's order is a
404, never a 403), and the snapshot the order page and the API show."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.http import Http404

from catalog.models import Order
from portal.models import Membership, User
from portal.permissions import ROLE_PERMISSIONS, Permission, has_permission


def order_list(*, membership: Membership) -> QuerySet[Order]:
    return Order.objects.filter(organization_id=membership.organization_id).select_related(
        "product"
    )


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
        "handover": offering_for(order.offering).handover(order),
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
