"""One tenant never sees another's jobs: not on pages, not in the API, not over websockets."""

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from portal.consumers import CLOSE_NOT_FOUND, CLOSE_UNAUTHENTICATED, JobProgressConsumer
from tests.portal.factories import JobFactory, member

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def alice_and_bobs_job():
    alice = member()
    bob = member()
    return alice, JobFactory(organization=bob.memberships.get().organization)


def test_given_another_tenants_job_when_opening_its_page_then_404(client, alice_and_bobs_job):
    alice, job = alice_and_bobs_job
    client.force_login(alice)
    assert client.get(f"/jobs/{job.pk}/").status_code == 404


def test_given_another_tenants_job_when_reading_it_by_api_then_404(client, alice_and_bobs_job):
    alice, job = alice_and_bobs_job
    client.force_login(alice)
    assert client.get(f"/api/v1/jobs/{job.pk}/").status_code == 404
    assert client.get("/api/v1/jobs/").json()["results"] == []


def _first_frame(user, job_id):
    """Connect as `user`; return (connected, close code, first JSON frame or None)."""

    async def run():
        communicator = WebsocketCommunicator(JobProgressConsumer.as_asgi(), f"/ws/jobs/{job_id}/")
        communicator.scope["user"] = user
        communicator.scope["url_route"] = {"kwargs": {"job_id": job_id}}
        connected, code = await communicator.connect(timeout=5)
        if not connected:
            return connected, code, None
        frame = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return connected, code, frame

    return async_to_sync(run)()


def test_websocket_given_another_tenants_job_then_closed_as_not_found(alice_and_bobs_job):
    alice, job = alice_and_bobs_job
    assert _first_frame(alice, job.pk) == (False, CLOSE_NOT_FOUND, None)


def test_websocket_given_an_anonymous_visitor_then_closed_as_unauthenticated(
    alice_and_bobs_job,
):
    _, job = alice_and_bobs_job
    assert _first_frame(AnonymousUser(), job.pk) == (False, CLOSE_UNAUTHENTICATED, None)


def test_websocket_given_own_job_then_the_current_state_arrives_first(alice_and_bobs_job):
    _, job = alice_and_bobs_job
    bob = job.organization.memberships.get().user
    connected, _, frame = _first_frame(bob, job.pk)
    assert connected
    assert frame == {"id": job.pk, "state": "queued", "progress": 0, "message": ""}


@pytest.fixture
def two_tenants():
    """Owner A of organization A, and a full set of organization B's objects."""
    from datetime import timedelta

    from django.utils import timezone

    from billing.models import Card
    from portal.models import ApiToken, AuditEvent, Invitation, Membership, SshKey

    alice, bob = member(verified=True), member(verified=True)
    b_org = bob.memberships.get().organization
    colleague = member(role=Membership.Role.MEMBER, organization=b_org)
    return alice, {
        "job": JobFactory(organization=b_org),
        "membership": colleague.memberships.get(),
        "invitation": Invitation.objects.create(
            organization=b_org,
            email="invitee@example.com",
            role="member",
            invited_by=bob,
            expires_at=timezone.now() + timedelta(days=1),
        ),
        "token": ApiToken.objects.create(
            organization=b_org, created_by=bob, name="b-token", prefix="bbbb0000", digest="0" * 64
        ),
        "card": Card.objects.create(
            organization=b_org,
            stripe_payment_method_id="pm_b",
            brand="visa",
            last4="9999",
            exp_month=1,
            exp_year=2030,
            is_default=True,
        ),
        "ssh_key": SshKey.objects.create(
            user=bob,
            name="b-key",
            key_type="ssh-ed25519",
            bits=256,
            public_key="x",
            fingerprint="SHA256:b",
        ),
        "audit": AuditEvent.objects.create(
            organization=b_org, actor=bob, action="token_created", target="b-secret-target"
        ),
        "org": b_org,
    }


def test_given_two_tenants_then_every_object_url_of_the_other_is_404(client, two_tenants):
    alice, b = two_tenants
    client.force_login(alice)
    gets = [f"/jobs/{b['job'].pk}/", f"/api/v1/jobs/{b['job'].pk}/"]
    posts = [
        (f"/organization/members/{b['membership'].pk}/role/", {"role": "owner"}),
        (f"/organization/members/{b['membership'].pk}/remove/", {}),
        (f"/organization/invitations/{b['invitation'].pk}/revoke/", {}),
        (f"/organization/tokens/{b['token'].pk}/revoke/", {}),
        (f"/billing/cards/{b['card'].pk}/remove/", {}),
        (f"/account/ssh-keys/{b['ssh_key'].pk}/delete/", {}),
        ("/organizations/switch/", {"organization": b["org"].pk}),
    ]
    for url in gets:
        assert client.get(url).status_code == 404, url
    for url, data in posts:
        assert client.post(url, data).status_code == 404, url
    b["membership"].refresh_from_db()
    b["token"].refresh_from_db()
    b["invitation"].refresh_from_db()
    assert b["membership"].role == "member"
    assert b["token"].revoked_at is None and b["invitation"].is_open
    assert b["card"].__class__.objects.filter(pk=b["card"].pk).exists()


def test_given_two_tenants_then_no_list_page_or_api_list_shows_the_other(client, two_tenants):
    alice, b = two_tenants
    client.force_login(alice)
    pages = {
        "/dashboard/": str(b["job"]),
        "/organization/members/": b["membership"].user.email,
        "/organization/tokens/": "bbbb0000",
        "/billing/": "9999",
        "/account/ssh-keys/": "SHA256:b",
        "/organization/audit/": "b-secret-target",
    }
    for url, secret in pages.items():
        response = client.get(url)
        assert response.status_code == 200, url
        assert secret not in response.content.decode(), url
    assert client.get("/api/v1/jobs/").json()["results"] == []
    audit = client.get("/api/v1/audit-events/").json()["results"]
    assert all(e["target"] != "b-secret-target" for e in audit)
