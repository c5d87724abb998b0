"""Organizations (tenants), their members and roles, and invitations."""

from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMessage
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from portal import realtime
from portal.models import AuditEvent, Invitation, Membership, Organization, User
from portal.permissions import Permission, has_permission, require
from portal.services.audit import Actor, audit_record
from portal.services.mail import mail_queue

Role = Membership.Role
INVITATION_SALT = "portal.invitation"


@transaction.atomic
def organization_create(*, name: str, owner: User, actor: Actor | None = None) -> Organization:
    name = name.strip()
    if not name:
        raise ValidationError({"name": "An organization needs a name."})
    base = slugify(name)[:56] or "org"
    slug, n = base, 1
    while Organization.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    organization = Organization.objects.create(name=name[:120], slug=slug)
    Membership.objects.create(user=owner, organization=organization, role=Role.OWNER)
    audit_record(
        action=AuditEvent.Action.ORGANIZATION_CREATED,
        actor=actor or Actor(user=owner),
        organization=organization,
        target=organization.slug,
    )
    return organization


def _access_revoked_on_commit(*, user_id: int) -> None:
    """Open websockets authorize only on connect: tell the user's sockets to check again once
    the change is committed (they close if what they stream is no longer visible)."""
    # Robust: the change is committed; Redis being away must not turn it into a 500 (logged).
    transaction.on_commit(lambda: realtime.access_revoked_publish(user_id=user_id), robust=True)


def _owners(organization: Organization):
    return organization.memberships.filter(role=Role.OWNER)


@transaction.atomic
def membership_role_change(*, by: Membership, membership: Membership, role: str, actor: Actor):
    """Change a member's role. Admins manage members; only owners grant or take ownership,
    and the last owner stays an owner."""
    if membership.organization_id != by.organization_id:
        raise PermissionDenied("Not a member of this organization.")
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}."})
    require(by, Permission.MANAGE_MEMBERS)
    if Role.OWNER in (role, membership.role):
        require(by, Permission.MANAGE_OWNERS)
    # Lock the organization so two demotions cannot both pass the last-owner check.
    Organization.objects.select_for_update().get(pk=membership.organization_id)
    membership = Membership.objects.get(pk=membership.pk)
    if membership.role == Role.OWNER != role and _owners(membership.organization).count() <= 1:
        raise ValidationError({"role": "An organization needs at least one owner."})
    before = membership.role
    could_view = has_permission(membership, Permission.VIEW)
    membership.role = role
    membership.save(update_fields=["role"])
    if could_view and not has_permission(membership, Permission.VIEW):
        _access_revoked_on_commit(user_id=membership.user_id)
    audit_record(
        action=AuditEvent.Action.ROLE_CHANGED,
        actor=actor,
        organization=membership.organization,
        target=membership.user.email,
        detail={"from": before, "to": role},
    )
    return membership


@transaction.atomic
def membership_remove(*, by: Membership, membership: Membership, actor: Actor) -> None:
    if membership.organization_id != by.organization_id:
        raise PermissionDenied("Not a member of this organization.")
    leaving = membership.user_id == by.user_id
    if not leaving:
        require(by, Permission.MANAGE_MEMBERS)
        if membership.role == Role.OWNER:
            require(by, Permission.MANAGE_OWNERS)
    Organization.objects.select_for_update().get(pk=membership.organization_id)
    if membership.role == Role.OWNER and _owners(membership.organization).count() <= 1:
        raise ValidationError("The last owner cannot leave; make someone else an owner first.")
    membership.delete()
    _access_revoked_on_commit(user_id=membership.user_id)
    audit_record(
        action=AuditEvent.Action.MEMBER_REMOVED,
        actor=actor,
        organization=membership.organization,
        target=membership.user.email,
    )


# --- invitations ----------------------------------------------------------------------------------


def invitation_token(invitation: Invitation) -> str:
    return signing.dumps(invitation.pk, salt=INVITATION_SALT)


def invitation_from_token(token: str) -> Invitation | None:
    """The open invitation a link names, or None when the link is forged, expired or used."""
    try:
        pk = signing.loads(token, salt=INVITATION_SALT, max_age=settings.INVITATION_MAX_AGE)
    except signing.BadSignature:
        return None
    invitation = Invitation.objects.select_related("organization").filter(pk=pk).first()
    if invitation is None or not invitation.is_open or invitation.expires_at <= timezone.now():
        return None
    return invitation


@transaction.atomic
def invitation_create(
    *, by: Membership, email: str, role: str, actor: Actor, base_url: str
) -> Invitation:
    require(by, Permission.MANAGE_MEMBERS)
    if role == Role.OWNER:
        require(by, Permission.MANAGE_OWNERS)
    email = email.strip()
    organization = by.organization
    if organization.memberships.filter(user__email__iexact=email).exists():
        raise ValidationError({"email": f"{email} is already a member."})
    Invitation.objects.filter(
        organization=organization,
        email__iexact=email,
        accepted_at=None,
        declined_at=None,
        revoked_at=None,
    ).update(revoked_at=timezone.now())  # a new invitation replaces an open one
    invitation = Invitation.objects.create(
        organization=organization,
        email=email,
        role=role,
        invited_by=by.user,
        expires_at=timezone.now() + timedelta(seconds=settings.INVITATION_MAX_AGE),
    )
    audit_record(
        action=AuditEvent.Action.MEMBER_INVITED,
        actor=actor,
        organization=organization,
        target=email,
        detail={"role": role},
    )
    link = base_url.rstrip("/") + reverse("portal:invitation", args=[invitation_token(invitation)])
    context = {"invitation": invitation, "link": link}
    mail_queue(
        message=EmailMessage(
            subject=f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}Join {organization.name}",
            body=render_to_string("portal/email/invitation.txt", context),
            to=[email],
        )
    )
    return invitation


def invitee_check(*, invitation: Invitation, user: User) -> None:
    """PermissionDenied unless the invitation was sent to one of the user's addresses;
    ValidationError while that address is unverified."""
    from allauth.account.models import EmailAddress

    address = EmailAddress.objects.filter(user=user, email__iexact=invitation.email).first()
    if address is None and user.email.lower() != invitation.email.lower():
        raise PermissionDenied("This invitation was sent to another address.")
    if address is None or not address.verified:
        raise ValidationError(f"Verify {invitation.email} before you accept the invitation.")


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user: User, actor: Actor) -> Membership:
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    invitee_check(invitation=invitation, user=user)
    if not invitation.is_open or invitation.expires_at <= timezone.now():
        raise ValidationError("This invitation is no longer valid.")
    membership, created = Membership.objects.get_or_create(
        user=user, organization=invitation.organization, defaults={"role": invitation.role}
    )
    invitation.accepted_at = timezone.now()
    invitation.save(update_fields=["accepted_at"])
    audit_record(
        action=AuditEvent.Action.INVITATION_ACCEPTED,
        actor=actor,
        organization=invitation.organization,
        target=invitation.email,
        detail={"role": membership.role, "new_member": created},
    )
    return membership


@transaction.atomic
def invitation_decline(*, invitation: Invitation, user: User, actor: Actor) -> None:
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    invitee_check(invitation=invitation, user=user)
    if invitation.is_open:
        invitation.declined_at = timezone.now()
        invitation.save(update_fields=["declined_at"])
        audit_record(
            action=AuditEvent.Action.INVITATION_DECLINED,
            actor=actor,
            organization=invitation.organization,
            target=invitation.email,
        )


@transaction.atomic
def invitation_revoke(*, by: Membership, invitation: Invitation, actor: Actor) -> None:
    if invitation.organization_id != by.organization_id:
        raise PermissionDenied("Not this organization's invitation.")
    require(by, Permission.MANAGE_MEMBERS)
    if invitation.is_open:
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
        audit_record(
            action=AuditEvent.Action.INVITATION_REVOKED,
            actor=actor,
            organization=by.organization,
            target=invitation.email,
        )
