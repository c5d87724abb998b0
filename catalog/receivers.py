"""When billing says an organization's budget or prepaid balance is used up, stop what it runs:
GPUs and notebook slices at once, bare-metal servers after a grace period (their lease end is
brought forward, so the lease sweep warns and then reclaims)."""

from datetime import timedelta

from django.conf import settings
from django.dispatch import receiver
from django.utils import timezone

from billing.services.budgets import spending_limit_reached
from fabric.choices import AllocationShape
from fabric.selectors.capacity import holding_allocations
from fabric.services.allocations import (
    allocation_deadline,
    allocation_reclaimed,
    allocation_release,
)
from portal.services.audit import Actor


@receiver(spending_limit_reached)
def stop_spending(sender, organization, reason, **kwargs):
    from catalog.gateway.limits import organization_block

    now = timezone.now()
    next_month = (now.replace(day=1) + timedelta(days=32)).replace(day=1, hour=0, minute=0)
    organization_block(  # inference keys answer 402 until the month ends or credit comes
        organization_id=organization.pk,
        blocked=True,
        seconds=int((next_month - now).total_seconds()),
    )
    actor = Actor.system("task")
    grace = timedelta(seconds=settings.BARE_METAL_GRACE_SECONDS)
    for allocation in holding_allocations(organization=organization):
        if allocation.shape == AllocationShape.NODE:
            allocation_deadline(
                allocation=allocation,
                ends_at=timezone.now() + grace,
                actor=actor,
                reason=f"stopping: {reason}",
            )
        elif hasattr(allocation, "order"):
            from catalog.services.orders import order_terminate

            order_terminate(order=allocation.order, actor=actor, reason=reason)  # stops now
        else:
            allocation_release(allocation=allocation, actor=actor, reason=f"stopped: {reason}")


@receiver(allocation_reclaimed)
def stop_order_of_reclaimed_lease(sender, allocation, **kwargs):
    """A lease ended (its time, or a spending limit's grace): the order on it stops."""
    from catalog.models import Order
    from catalog.services.orders import order_terminate

    order = Order.objects.filter(allocation=allocation).first()
    if order is not None:
        order_terminate(order=order, actor=Actor.system("task"), reason="lease ended")
