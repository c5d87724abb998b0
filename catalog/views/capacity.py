"""The tenant's capacity page: what it holds or waits for, and self-service reservations that
answer at once — confirmed with the price, or the nearest windows that fit."""

from decimal import Decimal

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render

from catalog import pricing
from catalog.forms import ReservationForm
from catalog.metering import allocation_billing
from catalog.selectors.storefront import (
    purchase_blockers,
    reservation_quote,
    storefront_availability,
)
from fabric.selectors.capacity import allocation_list, reservation_list
from fabric.services.reservations import NoCapacity, reservation_book
from portal.decorators import membership_required
from portal.permissions import Permission, has_permission
from portal.services.audit import Actor


@membership_required(Permission.VIEW)
def capacity(request):
    membership = request.membership
    availability = storefront_availability()
    prices: dict[str, Decimal] = {}
    form = ReservationForm(request.POST or None, gpu_models=[a["gpu_model"] for a in availability])
    suggestions = []
    if request.method == "POST":
        if not has_permission(membership, Permission.ORDER):
            messages.error(request, "Your role cannot reserve capacity.")
        elif blockers := purchase_blockers(user=request.user, membership=membership):
            messages.error(request, " ".join(blockers))
        elif form.is_valid():
            values = form.cleaned_data
            try:
                reservation = reservation_book(
                    organization=membership.organization,
                    actor=Actor.from_request(request),
                    **values,
                )
            except NoCapacity as full:
                price = reservation_quote(**values)
                suggestions = [(start, end, price) for start, end in full.suggestions]
                form.add_error(None, full.messages[0])
            except ValidationError as error:
                form.add_error(None, error)
            else:
                price = pricing.quote(reservation.gpu_model, reservation.gpu_hours)
                messages.success(
                    request,
                    f"Reserved {reservation.count} {reservation.gpu_model} GPU(s) from "
                    f"{reservation.starts_at:%Y-%m-%d %H:%M} UTC "
                    f"({reservation.weekly_occurrences} week(s)) for ${price}.",
                )
                return redirect("catalog:capacity")
    allocations = list(allocation_list(organization=membership.organization)[:50])
    billing = allocation_billing(allocations=allocations)
    reservations = list(reservation_list(organization=membership.organization)[:50])
    return render(
        request,
        "catalog/capacity.html",
        {
            "allocations": [(a, billing[a.pk]) for a in allocations],
            "reservations": [(r, _reservation_price(r, prices)) for r in reservations],
            "availability": availability,
            "form": form,
            "suggestions": suggestions,
        },
    )


def _reservation_price(reservation, prices: dict[str, Decimal]) -> Decimal:
    """The reservation's quoted price, each GPU model's rate looked up once per page."""
    if reservation.gpu_model not in prices:
        prices[reservation.gpu_model] = pricing.gpu_hour_price(reservation.gpu_model, "reserved")
    return (prices[reservation.gpu_model] * Decimal(str(reservation.gpu_hours))).quantize(
        Decimal("0.01")
    )
