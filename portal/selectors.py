"""Reads, always scoped to what the caller may see."""

from django.db.models import QuerySet
from django.http import Http404

from portal.models import Job, Organization, User


def organization_for_user(*, user: User) -> Organization:
    """The organization the user is acting for: their first (until org switching exists)."""
    organization = (
        Organization.objects.filter(memberships__user=user)
        .order_by("memberships__created_at")
        .first()
    )
    if organization is None:
        raise Http404("You are not a member of any organization.")
    return organization


def job_list_for_user(*, user: User) -> QuerySet[Job]:
    return Job.objects.filter(organization__memberships__user=user).select_related("organization")


def job_get_for_user(*, user: User, job_id: int) -> Job:
    """The job if it belongs to one of the user's organizations; 404 otherwise, never 403."""
    try:
        return job_list_for_user(user=user).get(pk=job_id)
    except Job.DoesNotExist:
        raise Http404("No such job.") from None


def job_snapshot(job: Job) -> dict:
    return {
        "id": job.pk,
        "state": job.state,
        "progress": job.progress,
        "message": job.message,
    }
