"""API tokens: shown once, stored hashed, Bearer auth, scopes, expiry, revocation, last use."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from portal.models import ApiToken, AuditEvent, Membership
from tests.portal.factories import JobFactory, member, organization_of

pytestmark = pytest.mark.django_db


def _create(client, user, scope="read", expires_at=""):
    client.force_login(user)
    page = client.post(
        "/organization/tokens/", {"name": "ci", "scope": scope, "expires_at": expires_at}
    ).content.decode()
    client.logout()
    return re.search(r'id="new-token-value"[^>]*>(sfk_[^<]+)<', page)[1]


def test_given_a_new_token_then_it_is_shown_once_and_only_its_digest_is_stored(client):
    owner = member()
    plain = _create(client, owner)
    token = ApiToken.objects.get()
    assert plain.startswith(f"sfk_{token.prefix}_")
    assert plain not in (token.digest, token.prefix)
    assert len(token.digest) == 64
    client.force_login(owner)
    listing = client.get("/organization/tokens/").content.decode()
    assert plain not in listing
    assert f"sfk_{token.prefix}_" in listing
    assert AuditEvent.objects.filter(action=AuditEvent.Action.TOKEN_CREATED).count() == 1


def test_given_a_read_token_then_it_lists_jobs_but_cannot_start_one(client):
    owner = member()
    job = JobFactory(organization=organization_of(owner))
    auth = {"HTTP_AUTHORIZATION": f"Bearer {_create(client, owner)}"}
    listed = client.get("/api/v1/jobs/", **auth).json()["results"]
    assert [j["id"] for j in listed] == [job.pk]
    response = client.post("/api/v1/jobs/", {"kind": "self_check"}, **auth)
    assert response.status_code == 403
    assert ApiToken.objects.get().last_used_at is not None


def test_given_a_read_write_token_then_it_can_start_a_job(
    client, django_capture_on_commit_callbacks
):
    owner = member()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {_create(client, owner, scope='read_write')}"}
    with django_capture_on_commit_callbacks():
        response = client.post("/api/v1/jobs/", {"kind": "self_check"}, **auth)
    assert response.status_code == 201


def test_given_a_revoked_expired_or_altered_token_then_401(client):
    owner = member()
    revoked = _create(client, owner)
    client.force_login(owner)
    client.post(f"/organization/tokens/{ApiToken.objects.get().pk}/revoke/")
    client.logout()
    expired = _create(
        client, owner, expires_at=(timezone.now() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    )
    ApiToken.objects.filter(revoked_at=None).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    altered = expired[:-1] + ("A" if expired[-1] != "A" else "B")
    for plain in (revoked, expired, altered, "sfk_nope", "garbage"):
        response = client.get("/api/v1/jobs/", HTTP_AUTHORIZATION=f"Bearer {plain}")
        assert response.status_code == 401, plain


def test_given_the_creator_left_the_organization_then_their_token_stops_working(client):
    owner = member()
    plain = _create(client, owner)
    Membership.objects.filter(user=owner).delete()
    assert client.get("/api/v1/jobs/", HTTP_AUTHORIZATION=f"Bearer {plain}").status_code == 401


def test_given_a_member_role_then_the_tokens_page_is_forbidden(client):
    client.force_login(member(role=Membership.Role.MEMBER))
    assert client.get("/organization/tokens/").status_code == 403


def test_given_many_tokens_then_every_one_authenticates_whatever_its_secret_holds():
    from portal.services.audit import Actor
    from portal.services.tokens import api_token_authenticate, api_token_create

    owner = member()
    membership = owner.memberships.get()
    plains = [
        api_token_create(
            by=membership, name=f"t{n}", scope="read", expires_at=None, actor=Actor(user=owner)
        )[1]
        for n in range(40)
    ]
    assert any("_" in p.split("_", 2)[2] for p in plains)  # secrets with "_" are covered
    assert all(api_token_authenticate(p) is not None for p in plains)
