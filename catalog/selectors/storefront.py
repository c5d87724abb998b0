from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.utils import timezone

from billing.rating import running_cost
from billing.selectors import organization_can_pay, suspension_open
from catalog.models import Product
from catalog.offerings import offering_for
from catalog.pricing import gpu_hour_price, quote
from fabric.selectors.capacity import availability
from portal.models import Membership, User
from portal.permissions import Permission, has_permission
from portal.selectors import email_verified, ssh_key_list


def product_list_public() -> QuerySet[Product]:
    """The menu: what anyone, signed in or not, may see; only what can be had today (a kind
    an offering fulfils, or inference, sold by the token on its own page)."""
    sellable = [*settings.OFFERINGS, Product.Kind.INFERENCE]
    return Product.objects.filter(is_active=True, kind__in=sellable)


def notebook_product_get() -> Product | None:
    """The notebook product on sale (None when there is none)."""
    return Product.objects.filter(kind=Product.Kind.NOTEBOOK, is_active=True).first()


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


def purchase_check(*, user: User, membership: Membership) -> None:
    """PermissionDenied naming every purchase blocker, if there is any."""
    blockers = purchase_blockers(user=user, membership=membership)
    if blockers:
        raise PermissionDenied(" ".join(blockers))


@dataclass(frozen=True)
class Quote:
    spec: dict  # as the offering cleaned it: what an order placed now would record
    hourly_price: Decimal
    # Whether it would start now or wait, and where in the queue (offerings that queue):
    # {"free", "queued", "position", "estimated_start"}; None when the offering does not say.
    standing: dict | None = None


def order_quote(*, product: Product, spec: dict) -> Quote:
    """What ordering `product` with `spec` would cost per hour once ready, and whether it
    would start now or queue. ValidationError naming each bad field of the spec; NoOffering
    when nothing fulfils the product's kind."""
    offering = offering_for(product.kind)
    clean = offering.clean_spec(spec)
    standing = offering.standing(clean) if hasattr(offering, "standing") else None
    return Quote(spec=clean, hourly_price=offering.hourly_price(clean), standing=standing)


def order_ssh_keys(*, user: User, chosen: list[str] | None) -> list[str]:
    """The fingerprints of the SSH keys a bare-metal order by `user` hands its servers:
    `chosen` (each one of theirs), or all theirs when None. ValidationError on `ssh_keys`
    when that is none: the servers take only keys."""
    theirs = set(ssh_key_list(user=user).values_list("fingerprint", flat=True))
    if not theirs:
        raise ValidationError(
            {"ssh_keys": "Add an SSH key first: bare-metal servers are reached with keys only."}
        )
    if chosen is None:
        return sorted(theirs)
    if not chosen:
        raise ValidationError({"ssh_keys": "Choose at least one of your SSH keys."})
    unknown = sorted(set(chosen) - theirs)
    if unknown:
        raise ValidationError({"ssh_keys": f"Not one of your SSH keys: {', '.join(unknown)}."})
    return sorted(set(chosen))


def reservation_quote(
    *, gpu_model: str, count: int, starts_at: datetime, ends_at: datetime, weekly_occurrences: int
) -> Decimal:
    """What reserving `count` GPUs in the window, `weekly_occurrences` times, would cost."""
    hours = (ends_at - starts_at).total_seconds() / 3600
    return quote(gpu_model, hours * count * weekly_occurrences)


@dataclass(frozen=True)
class NotebookPrice:
    profile: str
    label: str
    hourly_price: Decimal


def notebook_price_list() -> list[NotebookPrice]:
    """Each notebook profile (settings.NOTEBOOK_PROFILES, in order) with its hourly price."""
    offering = offering_for(Product.Kind.NOTEBOOK)
    return [
        NotebookPrice(
            profile=key,
            label=profile["label"],
            hourly_price=offering.hourly_price(offering.clean_spec({"profile": key})),
        )
        for key, profile in settings.NOTEBOOK_PROFILES.items()
    ]


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
