"""Security defaults: DEBUG is off unless asked for, the server refuses to start without its
secrets (there is no public fallback), `check --deploy` passes under production settings, and
JupyterHub's sign-in still works under the hardened OAuth settings."""

import base64
import hashlib
import os
import secrets
import subprocess
import sys
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings

from catalog.notebooks.oauth import hub_application_ensure
from portal.stack import ROOT
from tests.portal.factories import member


def _production_secrets() -> dict[str, str]:
    return {
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "STOREFRONT_SECRETS_KEYS": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
    }


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    """manage.py with `env` and none of the values the test run set for itself
    (tests/environment.py): only what a fresh production server would have."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("DJANGO_") and k != "STOREFRONT_SECRETS_KEYS"
    }
    base |= {"DATABASE_URL": settings.DATABASE_URL, "REDIS_URL": settings.REDIS_URL}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=base | env,
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def test_without_a_secret_key_the_server_refuses_to_start_and_names_it():
    keys = _production_secrets()["STOREFRONT_SECRETS_KEYS"]
    result = _manage("check", STOREFRONT_SECRETS_KEYS=keys)
    assert result.returncode != 0
    assert "ImproperlyConfigured: DJANGO_SECRET_KEY is not set" in result.stderr


def test_without_secrets_keys_the_server_refuses_to_start_and_names_them():
    result = _manage("check", DJANGO_SECRET_KEY=_production_secrets()["DJANGO_SECRET_KEY"])
    assert result.returncode != 0
    assert "ImproperlyConfigured: STOREFRONT_SECRETS_KEYS is not set" in result.stderr


def test_debug_on_is_no_way_around_the_secrets():
    result = _manage("check", DJANGO_DEBUG="1")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_a_secrets_key_that_is_no_fernet_key_is_refused():
    keys = _production_secrets() | {"STOREFRONT_SECRETS_KEYS": "not-a-key"}
    result = _manage("check", **keys)
    assert result.returncode != 0
    assert "STOREFRONT_SECRETS_KEYS must hold Fernet keys" in result.stderr


def test_given_production_settings_then_debug_is_off_and_check_deploy_passes():
    env = _production_secrets() | {"DJANGO_ALLOWED_HOSTS": "gpus.example.com"}
    debug = _manage(
        "shell", "-v", "0", "-c", "from django.conf import settings; print(settings.DEBUG)", **env
    )
    assert debug.stdout.strip() == "False", debug.stderr
    check = _manage("check", "--deploy", "--fail-level", "WARNING", **env)
    assert check.returncode == 0, check.stderr
    assert "no issues" in check.stdout


@pytest.mark.django_db
def test_the_hubs_sign_in_works_under_the_oauth_security_bcp(client):
    """Authorization code with S256 PKCE, then userinfo with the bearer token in a header; the
    same token in the query string is refused."""
    redirect_uri = "http://127.0.0.1:8010/hub/oauth_callback"
    client_id, secret = hub_application_ensure(redirect_uri=redirect_uri)
    user = member()
    client.force_login(user)
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    authorize = client.get(
        "/oauth/authorize/",
        {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
         "scope": "read", "state": "s", "code_challenge": challenge.decode(),
         "code_challenge_method": "S256"},
    )  # fmt: skip
    assert authorize.status_code == 302, authorize.content
    code = parse_qs(urlsplit(authorize["Location"]).query)["code"][0]
    client.logout()
    token = client.post(
        "/oauth/token/",
        {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
         "client_id": client_id, "client_secret": secret, "code_verifier": verifier},
    )  # fmt: skip
    assert token.status_code == 200, token.content
    access = token.json()["access_token"]

    userinfo = client.get("/oauth/userinfo/", headers={"Authorization": f"Bearer {access}"})
    assert userinfo.status_code == 200 and userinfo.json()["email"] == user.email
    assert client.get("/oauth/userinfo/", {"access_token": access}).status_code != 200
