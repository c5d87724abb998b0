from decimal import Decimal

from django.db.models import QuerySet
from django.utils import timezone

from billing.rating import running_cost
from billing.selectors import organization_can_pay, suspension_open
from catalog.models import Product
from catalog.pricing import gpu_hour_price
from fabric.selectors_capacity import availability
from portal.models import Membership, User
from portal.permissions import Permission, has_permission
from portal.selectors import email_verified


def product_list_public() -> QuerySet[Product]:
    """The menu: what anyone, signed in or not, may see."""
    return Product.objects.filter(is_active=True)


def purchase_blockers(*, user: User, membership: Membership) -> list[str]:
    """Why this user may not order anything paid for this organization now (empty: they may)."""
    blockers = []
    if not has_permission(membership, Permission.ORDER):
        blockers.append("Your role in this organization cannot order.")
    if not email_verified(user=user):
        blockers.append("Verify your email address.")
    if not organization_can_pay(organization=membership.organization):
        blockers.append("Add a card or get prepaid credit.")
    suspended = suspension_open(organization=membership.organization)
    if suspended is not None:
        blockers.append(f"Ordering is suspended: {suspended.invoice} is unpaid.")
    return blockers


def storefront_availability() -> list[dict]:
    """Per GPU model: whole nodes, GPUs and 1g MIG slices that can start now, the next start
    when none can, and the list price per GPU-hour."""
    by_model: dict[str, dict] = {}
    for row in availability():
        entry = by_model.setdefault(
            row["gpu_model"],
            {"gpu_model": row["gpu_model"], "price": gpu_hour_price(row["gpu_model"])},
        )
        entry[row["shape"]] = row["available_now"]
        entry[f"{row['shape']}_next"] = row["next_available_at"]
    return list(by_model.values())


def month_to_date_cost(*, organization, now=None) -> Decimal:
    """What this month has cost so far, live: rated ledger usage plus the running hour."""
    from catalog.metering import unmetered_cost

    now = now or timezone.now()
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return running_cost(organization=organization, start=start, end=now) + unmetered_cost(
        organization=organization, now=now
    )
