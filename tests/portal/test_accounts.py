"""Sign-up, verification, sign-in limits, Argon2, two-factor, and the audit trail of sign-ins."""

import base64
import hashlib
import hmac
import re
import struct
import time

import pytest
from allauth.account.models import EmailAddress
from django.core import mail

from portal.models import AuditEvent, Membership, User
from tests.portal.factories import PASSWORD, member

pytestmark = pytest.mark.django_db


def _signup(client, email="new@example.com"):
    return client.post(
        "/accounts/signup/",
        {"email": email, "password1": "a-Long-passphrase-42", "password2": "a-Long-passphrase-42"},
    )


@pytest.fixture
def mailed(django_capture_on_commit_callbacks, tasks_in_process):
    """Run a request whose mail the task queued on commit sends into mail.outbox."""

    def run(request, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return request(*args, **kwargs)

    return run


def test_given_a_visitor_when_signing_up_then_they_own_a_personal_organization_and_get_a_link(
    client, mailed
):
    response = mailed(_signup, client)
    assert response.status_code == 302
    user = User.objects.get(email="new@example.com")
    membership = user.memberships.get()
    assert membership.role == Membership.Role.OWNER
    assert membership.organization.name == "new's organization"
    assert user.password.startswith("argon2")
    (message,) = mail.outbox
    assert message.to == ["new@example.com"]
    assert re.search(r"/accounts/confirm-email/\S+/", message.body)
    assert not EmailAddress.objects.get(user=user).verified


def test_given_the_emailed_link_when_confirmed_then_the_address_is_verified(client, mailed):
    mailed(_signup, client)
    link = re.search(r"http://testserver(/accounts/confirm-email/\S+/)", mail.outbox[0].body)[1]
    assert client.post(link).status_code == 302
    assert EmailAddress.objects.get(email="new@example.com").verified


def test_given_five_wrong_passwords_when_signing_in_then_even_the_right_one_is_refused_for_now(
    client,
):
    user = member()
    for _ in range(5):
        page = client.post("/accounts/login/", {"login": user.email, "password": "wrong"})
        assert "Too many failed login attempts" not in page.content.decode()
    page = client.post("/accounts/login/", {"login": user.email, "password": PASSWORD})
    assert "Too many failed login attempts. Try again later." in page.content.decode()
    assert client.get("/dashboard/").status_code == 302
    failures = AuditEvent.objects.filter(action=AuditEvent.Action.SIGN_IN_FAILED, actor=user)
    assert failures.count() >= 5


def test_given_a_burst_of_signups_from_one_address_then_it_is_rate_limited(client):
    codes = [_signup(client, f"burst{n}@example.com").status_code for n in range(11)]
    client.logout()
    assert codes[-1] == 429


def test_given_a_sign_in_then_each_organization_of_the_user_logs_it_with_the_address(client):
    user = member()
    client.post("/accounts/login/", {"login": user.email, "password": PASSWORD})
    event = AuditEvent.objects.get(action=AuditEvent.Action.SIGNED_IN)
    assert (event.actor, event.ip_address, event.via) == (user, "127.0.0.1", "web")
    assert event.organization == user.memberships.get().organization


def _totp(secret: str, at: float | None = None) -> str:
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    counter = struct.pack(">Q", int((at or time.time()) // 30))
    digest = hmac.new(key, counter, hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    code = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{code % 1_000_000:06d}"


def test_given_totp_enabled_when_signing_in_then_the_code_is_required(client):
    user = member(verified=True)
    client.post("/accounts/login/", {"login": user.email, "password": PASSWORD})
    # Turning on two-factor asks for the password again first.
    assert client.get("/accounts/2fa/totp/activate/")["Location"].startswith("/accounts/reauth")
    client.post("/accounts/reauthenticate/", {"password": PASSWORD})
    page = client.get("/accounts/2fa/totp/activate/").content.decode()
    secret = re.search(r'value="([A-Z2-7]{16,})"', page)[1]
    response = client.post("/accounts/2fa/totp/activate/", {"code": _totp(secret)})
    assert response.status_code == 302
    client.logout()

    response = client.post("/accounts/login/", {"login": user.email, "password": PASSWORD})
    assert response["Location"] == "/accounts/2fa/authenticate/"
    assert client.get("/dashboard/").status_code == 302  # not signed in yet
    wrong = client.post("/accounts/2fa/authenticate/", {"code": "000000"})
    assert wrong.status_code == 200
    response = client.post("/accounts/2fa/authenticate/", {"code": _totp(secret, time.time() + 30)})
    assert response.status_code == 302
    assert client.get("/dashboard/").status_code == 200


def test_given_a_forgotten_password_when_reset_by_the_emailed_link_then_the_new_one_works(
    client, mailed
):
    user = member(verified=True)
    mailed(client.post, "/accounts/password/reset/", {"email": user.email})
    link = re.search(r"http://testserver(/accounts/password/reset/key/\S+/)", mail.outbox[-1].body)[
        1
    ]
    form_url = client.get(link)["Location"]  # the key moves from the URL into the session
    response = client.post(
        form_url, {"password1": "Brand-new-secret-77", "password2": "Brand-new-secret-77"}
    )
    assert response.status_code == 302
    assert client.login(username=user.username, password="Brand-new-secret-77")
    assert not client.login(username=user.username, password=PASSWORD)


def test_given_a_signed_in_user_when_signing_out_then_pages_need_sign_in_again(client):
    user = member()
    client.force_login(user)
    client.post("/accounts/logout/")
    assert client.get("/dashboard/").status_code == 302
