"""Reads, always scoped to what the caller may see."""

from django.db.models import QuerySet
from django.http import Http404

from portal.models import ApiToken, AuditEvent, Invitation, Job, Membership, SshKey, User


def membership_list_for_user(*, user: User) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("organization").order_by("pk")


def membership_current(*, user: User, organization_id: int | None) -> Membership | None:
    """The membership the user acts through: the organization chosen in the session if they
    still belong to it, else their first."""
    memberships = membership_list_for_user(user=user)
    if organization_id is not None:
        chosen = memberships.filter(organization_id=organization_id).first()
        if chosen is not None:
            return chosen
    return memberships.first()


def membership_get(*, user: User, organization_id: int) -> Membership:
    try:
        return membership_list_for_user(user=user).get(organization_id=organization_id)
    except Membership.DoesNotExist:
        raise Http404("No such organization.") from None


def member_list(*, membership: Membership) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(organization_id=membership.organization_id)
        .select_related("user")
        .order_by("user__email")
    )


def member_get(*, membership: Membership, member_id: int) -> Membership:
    try:
        return member_list(membership=membership).get(pk=member_id)
    except Membership.DoesNotExist:
        raise Http404("No such member.") from None


def invitation_list_open(*, membership: Membership) -> QuerySet[Invitation]:
    return Invitation.objects.filter(
        organization_id=membership.organization_id,
        accepted_at=None,
        declined_at=None,
        revoked_at=None,
    )


def invitation_get(*, membership: Membership, invitation_id: int) -> Invitation:
    try:
        return invitation_list_open(membership=membership).get(pk=invitation_id)
    except Invitation.DoesNotExist:
        raise Http404("No such invitation.") from None


def job_list(*, membership: Membership) -> QuerySet[Job]:
    return Job.objects.filter(organization_id=membership.organization_id)


def job_get(*, membership: Membership, job_id: int) -> Job:
    """The job if it belongs to the caller's organization; 404 otherwise, never 403."""
    try:
        return job_list(membership=membership).get(pk=job_id)
    except Job.DoesNotExist:
        raise Http404("No such job.") from None


def job_get_for_user(*, user: User, job_id: int) -> Job:
    """The job if it belongs to any of the user's organizations (websockets follow a job
    whichever organization the browser has selected)."""
    try:
        return Job.objects.filter(organization__memberships__user=user).get(pk=job_id)
    except Job.DoesNotExist:
        raise Http404("No such job.") from None


def job_snapshot(job: Job) -> dict:
    return {
        "id": job.pk,
        "state": job.state,
        "progress": job.progress,
        "message": job.message,
    }


def api_token_list(*, membership: Membership) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(organization_id=membership.organization_id).select_related(
        "created_by"
    )


def api_token_get(*, membership: Membership, token_id: int) -> ApiToken:
    try:
        return api_token_list(membership=membership).get(pk=token_id)
    except ApiToken.DoesNotExist:
        raise Http404("No such token.") from None


def ssh_key_list(*, user: User) -> QuerySet[SshKey]:
    return SshKey.objects.filter(user=user)


def ssh_key_get(*, user: User, key_id: int) -> SshKey:
    try:
        return ssh_key_list(user=user).get(pk=key_id)
    except SshKey.DoesNotExist:
        raise Http404("No such key.") from None


def audit_list(*, membership: Membership) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(organization_id=membership.organization_id).select_related(
        "actor"
    )


def email_verified(*, user: User) -> bool:
    """The user's primary address is verified (required before ordering)."""
    from allauth.account.models import EmailAddress

    return EmailAddress.objects.filter(user=user, email__iexact=user.email, verified=True).exists()
