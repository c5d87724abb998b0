"""Background jobs (the platform self-check, an operator's tool in the operator console)."""

from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from portal import selectors
from portal.decorators import membership_required
from portal.models import Job
from portal.permissions import Permission, has_permission
from portal.services.jobs import job_start


@staff_member_required
def operator_jobs(request):
    """The operator console's background jobs: a job belongs to an organization, so the
    operator sees and starts those of the organization they act in (none: nothing to run)."""
    membership = request.membership
    return render(
        request,
        "portal/operator_jobs.html",
        {
            "membership": membership,
            "jobs": selectors.job_list(membership=membership)[:10] if membership else [],
            "can_run": membership is not None and has_permission(membership, Permission.ORDER),
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
