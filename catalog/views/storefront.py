"""The storefront's front door: the public landing page (products and live availability) and a
member's dashboard (what stands between them and ordering, their card, this month's cost)."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from billing.selectors import card_default
from catalog.selectors.storefront import (
    month_to_date_cost,
    product_list_public,
    purchase_blockers,
    storefront_availability,
)
from portal.permissions import Permission, has_permission


def home(request):
    if request.user.is_authenticated:
        return redirect("portal:dashboard")
    return render(
        request,
        "catalog/home.html",
        {"products": product_list_public(), "availability": storefront_availability()},
    )


@login_required
def dashboard(request):
    membership = request.membership
    if membership is None:
        if request.user.enrollments.exists():
            return redirect("courses:list")  # a student: their courses are their home
        return redirect("portal:organization_create")
    if not has_permission(membership, Permission.VIEW):
        return redirect("billing:overview")  # the billing role sees money, not machines
    return render(
        request,
        "catalog/dashboard.html",
        {
            "organization": membership.organization,
            "can_order": has_permission(membership, Permission.ORDER),
            "blockers": purchase_blockers(user=request.user, membership=membership),
            "card": card_default(organization=membership.organization),
            "month_cost": month_to_date_cost(organization=membership.organization),
            "products": product_list_public(),
            "availability": storefront_availability(),
        },
    )
