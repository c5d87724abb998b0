"""HTML pages: parse, authorize, call a service or selector, render."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from catalog.selectors import product_list_public
from portal import selectors, services
from portal.models import Job


def home(request):
    if request.user.is_authenticated:
        return redirect("portal:dashboard")
    return render(request, "portal/home.html", {"products": product_list_public()})


@login_required
def dashboard(request):
    organization = selectors.organization_for_user(user=request.user)
    jobs = selectors.job_list_for_user(user=request.user)[:10]
    return render(
        request,
        "portal/dashboard.html",
        {"organization": organization, "jobs": jobs, "products": product_list_public()},
    )


@login_required
@require_POST
def job_create(request):
    organization = selectors.organization_for_user(user=request.user)
    job = services.job_start(user=request.user, organization=organization, kind=Job.Kind.SELF_CHECK)
    return redirect("portal:job_detail", job_id=job.pk)


@login_required
def job_detail(request, job_id: int):
    job = selectors.job_get_for_user(user=request.user, job_id=job_id)
    return render(request, "portal/job_detail.html", {"job": job, "events": job.events.all()})
