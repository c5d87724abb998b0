"""Organizations: create and switch, roles decided in one place, invitations by signed link."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from portal.models import AuditEvent, Invitation, Membership
from tests.portal.factories import UserFactory, member, organization_of

pytestmark = pytest.mark.django_db
Role = Membership.Role


def test_given_a_user_when_creating_a_second_organization_then_they_act_for_it_and_can_switch(
    client,
):
    user = member()
    first = organization_of(user)
    client.force_login(user)
    client.post("/organizations/new/", {"name": "Lab Two"})
    assert "Lab Two" in client.get("/dashboard/").content.decode()
    client.post("/organizations/switch/", {"organization": first.pk})
    assert first.name in client.get("/dashboard/").content.decode().split("<h1")[1]


def test_given_someone_elses_organization_when_switching_to_it_then_404(client):
    user, stranger = member(), member()
    client.force_login(user)
    response = client.post("/organizations/switch/", {"organization": organization_of(stranger).pk})
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("role", "can_invite", "can_tokens", "can_billing", "can_audit", "can_view"),
    [
        (Role.OWNER, True, True, True, True, True),
        (Role.ADMIN, True, True, True, False, True),
        (Role.MEMBER, False, False, False, False, True),
        (Role.BILLING, False, False, True, False, False),
    ],
)
def test_each_role_reaches_exactly_its_pages(
    client, role, can_invite, can_tokens, can_billing, can_audit, can_view
):
    client.force_login(member(role=role))

    def allowed(response):
        return response.status_code in (200, 302)

    invite = client.post("/organization/members/", {"email": "x@example.com", "role": "member"})
    assert (invite.status_code != 403) is can_invite
    assert allowed(client.get("/organization/tokens/")) is can_tokens
    assert allowed(client.get("/billing/")) is can_billing
    assert allowed(client.get("/organization/audit/")) is can_audit
    assert (client.get("/jobs/0/").status_code == 404) is can_view  # 403 before the lookup


def test_given_an_admin_when_making_someone_owner_then_refused(client):
    admin = member(role=Role.ADMIN)
    colleague = member(role=Role.MEMBER, organization=organization_of(admin))
    target = colleague.memberships.get()
    client.force_login(admin)
    response = client.post(f"/organization/members/{target.pk}/role/", {"role": "owner"})
    assert response.status_code == 403
    target.refresh_from_db()
    assert target.role == Role.MEMBER


def test_given_the_last_owner_when_stepping_down_then_refused_with_a_reason(client):
    owner = member()
    mine = owner.memberships.get()
    client.force_login(owner)
    response = client.post(
        f"/organization/members/{mine.pk}/role/", {"role": "member"}, follow=True
    )
    assert "at least one owner" in response.content.decode()
    mine.refresh_from_db()
    assert mine.role == Role.OWNER


def test_given_an_owner_when_changing_a_role_then_the_audit_log_records_before_and_after(client):
    owner = member()
    colleague = member(role=Role.MEMBER, organization=organization_of(owner))
    client.force_login(owner)
    target = colleague.memberships.get()
    client.post(f"/organization/members/{target.pk}/role/", {"role": "admin"})
    event = AuditEvent.objects.get(action=AuditEvent.Action.ROLE_CHANGED)
    assert (event.actor, event.target, event.detail) == (
        owner,
        colleague.email,
        {"from": "member", "to": "admin"},
    )


@pytest.fixture
def invite(client, django_capture_on_commit_callbacks, tasks_in_process):
    """Invite by the members page as `owner`; returns the link from the email the mail task
    sends on commit."""

    def send(owner, email="guest@example.com", role="member"):
        client.force_login(owner)
        with django_capture_on_commit_callbacks(execute=True):
            client.post("/organization/members/", {"email": email, "role": role})
        return re.search(r"http://testserver(/invitations/\S+/)", mail.outbox[-1].body)[1]

    return send


def test_given_an_invitation_when_the_invitee_accepts_then_they_join_with_the_role(client, invite):
    owner = member()
    link = invite(owner, role="billing")
    guest = UserFactory(email="guest@example.com", verified=True)
    client.force_login(guest)
    assert client.get(link).status_code == 200
    client.post(link, {"decision": "accept"})
    assert guest.memberships.get(organization=organization_of(owner)).role == Role.BILLING
    assert client.get(link).status_code == 404  # used


def test_given_an_invitation_when_someone_else_opens_or_accepts_it_then_404(client, invite):
    owner = member()
    link = invite(owner)
    intruder = member(verified=True)
    client.force_login(intruder)
    assert client.get(link).status_code == 404
    assert client.post(link, {"decision": "accept"}).status_code == 404
    assert not intruder.memberships.filter(organization=organization_of(owner)).exists()
    assert Invitation.objects.get().is_open


def test_given_an_unverified_invitee_then_they_are_asked_to_verify_first(client, invite):
    owner = member()
    link = invite(owner)
    guest = UserFactory(email="guest@example.com")
    client.force_login(guest)
    page = client.get(link).content.decode()
    assert "Verify guest@example.com before you accept" in page
    client.post(link, {"decision": "accept"})
    assert not guest.memberships.exists()


def test_given_an_invitation_when_declined_then_it_is_closed_and_nobody_joins(client, invite):
    owner = member()
    link = invite(owner)
    guest = UserFactory(email="guest@example.com", verified=True)
    client.force_login(guest)
    client.post(link, {"decision": "decline"})
    assert Invitation.objects.get().declined_at is not None
    assert not guest.memberships.exists()


def test_given_an_expired_or_forged_link_then_404(client, invite):
    owner = member()
    link = invite(owner)
    Invitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    guest = UserFactory(email="guest@example.com", verified=True)
    client.force_login(guest)
    assert client.get(link).status_code == 404
    assert client.get(link[:-3] + "xx/").status_code == 404


def test_given_an_existing_member_when_invited_again_then_the_form_says_so(client):
    owner = member()
    colleague = member(role=Role.MEMBER, organization=organization_of(owner))
    client.force_login(owner)
    page = client.post("/organization/members/", {"email": colleague.email, "role": "member"})
    assert f"{colleague.email} is already a member." in page.content.decode()
    assert not Invitation.objects.exists()
