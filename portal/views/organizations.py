"""Organizations: create, switch, members, roles and invitations."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from portal import selectors
from portal.decorators import membership_required
from portal.forms import InvitationForm, OrganizationForm, RoleForm
from portal.middleware import SESSION_KEY
from portal.permissions import Permission, has_permission
from portal.services import organizations as org_services
from portal.services.audit import Actor
from portal.views.forms_util import apply_validation_error


@login_required
def organization_create(request):
    form = OrganizationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        organization = org_services.organization_create(
            name=form.cleaned_data["name"], owner=request.user, actor=Actor.from_request(request)
        )
        request.session[SESSION_KEY] = organization.pk
        messages.success(request, f"Created {organization.name}.")
        return redirect("portal:dashboard")
    return render(request, "portal/organization_create.html", {"form": form})


@login_required
@require_POST
def organization_switch(request):
    try:
        organization_id = int(request.POST.get("organization", ""))
    except ValueError:
        raise Http404("No such organization.") from None
    membership = selectors.membership_get(user=request.user, organization_id=organization_id)
    request.session[SESSION_KEY] = membership.organization_id
    return redirect("portal:dashboard")


@membership_required(Permission.VIEW)
def member_list(request):
    membership = request.membership
    can_manage = has_permission(membership, Permission.MANAGE_MEMBERS)
    form = InvitationForm(request.POST or None)
    if request.method == "POST":
        if not can_manage:
            raise PermissionDenied("Your role cannot invite members.")
        if form.is_valid():
            try:
                org_services.invitation_create(
                    by=membership,
                    email=form.cleaned_data["email"],
                    role=form.cleaned_data["role"],
                    actor=Actor.from_request(request),
                    base_url=request.build_absolute_uri("/"),
                )
            except ValidationError as error:
                apply_validation_error(form, error)
            else:
                messages.success(request, f"Invitation sent to {form.cleaned_data['email']}.")
                return redirect("portal:members")
    return render(
        request,
        "portal/members.html",
        {
            "members": selectors.member_list(membership=membership),
            "invitations": selectors.invitation_list_open(membership=membership),
            "form": form,
            "can_manage": can_manage,
            "roles": RoleForm.base_fields["role"].choices,
        },
    )


@membership_required(Permission.VIEW)
@require_POST
def member_role(request, member_id: int):
    target = selectors.member_get(membership=request.membership, member_id=member_id)
    form = RoleForm(request.POST)
    if form.is_valid():
        try:
            org_services.membership_role_change(
                by=request.membership,
                membership=target,
                role=form.cleaned_data["role"],
                actor=Actor.from_request(request),
            )
            messages.success(request, f"{target.user.email} is now {form.cleaned_data['role']}.")
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
    return redirect("portal:members")


@membership_required(Permission.VIEW)
@require_POST
def member_remove(request, member_id: int):
    target = selectors.member_get(membership=request.membership, member_id=member_id)
    try:
        org_services.membership_remove(
            by=request.membership, membership=target, actor=Actor.from_request(request)
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("portal:members")
    if target.user_id == request.user.pk:
        request.session.pop(SESSION_KEY, None)
        return redirect("portal:dashboard")
    messages.success(request, f"Removed {target.user.email}.")
    return redirect("portal:members")


@membership_required(Permission.MANAGE_MEMBERS)
@require_POST
def invitation_revoke(request, invitation_id: int):
    invitation = selectors.invitation_get(
        membership=request.membership, invitation_id=invitation_id
    )
    org_services.invitation_revoke(
        by=request.membership, invitation=invitation, actor=Actor.from_request(request)
    )
    messages.success(request, f"Invitation to {invitation.email} revoked.")
    return redirect("portal:members")


@login_required
def invitation_respond(request, token: str):
    """The emailed link: only the invited address may see, accept or decline it."""
    invitation = org_services.invitation_from_token(token)
    if invitation is None:
        raise Http404("This invitation link is invalid, expired or already used.")
    actor = Actor.from_request(request)
    try:
        if request.method == "POST" and request.POST.get("decision") == "accept":
            membership = org_services.invitation_accept(
                invitation=invitation, user=request.user, actor=actor
            )
            request.session[SESSION_KEY] = membership.organization_id
            messages.success(request, f"Welcome to {invitation.organization.name}.")
            return redirect("portal:dashboard")
        if request.method == "POST" and request.POST.get("decision") == "decline":
            org_services.invitation_decline(invitation=invitation, user=request.user, actor=actor)
            messages.info(request, f"Declined the invitation to {invitation.organization.name}.")
            return redirect("portal:dashboard")
        org_services.invitee_check(invitation=invitation, user=request.user)
    except PermissionDenied:
        raise Http404("This invitation was sent to another address.") from None
    except ValidationError as error:
        return render(
            request, "portal/invitation.html", {"invitation": invitation, "error": error.messages}
        )
    return render(request, "portal/invitation.html", {"invitation": invitation})
