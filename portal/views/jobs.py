"""The landing page, the dashboard and background jobs."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from billing.selectors import card_default
from catalog.selectors import (
    month_to_date_cost,
    product_list_public,
    purchase_blockers,
    storefront_availability,
)
from portal import selectors
from portal.decorators import membership_required
from portal.models import Job
from portal.permissions import Permission, has_permission
from portal.services.jobs import job_start


def home(request):
    if request.user.is_authenticated:
        return redirect("portal:dashboard")
    return render(
        request,
        "portal/home.html",
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
        "portal/dashboard.html",
        {
            "organization": membership.organization,
            "jobs": selectors.job_list(membership=membership)[:10],
            "can_order": has_permission(membership, Permission.ORDER),
            "blockers": purchase_blockers(user=request.user, membership=membership),
            "card": card_default(organization=membership.organization),
            "month_cost": month_to_date_cost(organization=membership.organization),
            "products": product_list_public(),
            "availability": storefront_availability(),
        },
    )


@membership_required(Permission.ORDER)
@require_POST
def job_create(request):
    job = job_start(
        user=request.user, organization=request.membership.organization, kind=Job.Kind.SELF_CHECK
    )
    return redirect("portal:job_detail", job_id=job.pk)


@membership_required(Permission.VIEW)
def job_detail(request, job_id: int):
    job = selectors.job_get(membership=request.membership, job_id=job_id)
    return render(request, "portal/job_detail.html", {"job": job, "events": job.events.all()})
