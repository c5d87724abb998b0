"""API rate limits: per token (or user) and per client address for anonymous calls, counted in
the shared cache, answered 429 in JSON with Retry-After; X-Forwarded-For is believed only as
far as TRUSTED_PROXY_HOPS says. Rates here are per day, so no window ends inside a test."""

import pytest
from django.conf import settings
from django.test import override_settings

from portal.api.throttling import parse_rate
from portal.models import ApiToken
from portal.services.audit import Actor
from portal.services.tokens import api_token_create
from tests.portal.factories import member

pytestmark = pytest.mark.django_db


def rates(user="1000/day", anon="1000/day", proxies=0):
    return override_settings(
        REST_FRAMEWORK={
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {"user": user, "anon": anon},
            "NUM_PROXIES": proxies,
        }
    )


def _token(user) -> str:
    return api_token_create(
        by=user.memberships.get(), name="ci", scope=ApiToken.Scope.READ, expires_at=None,
        actor=Actor(user=user),
    )[1]  # fmt: skip


def test_given_a_token_past_its_rate_then_429_json_with_retry_after(client):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {_token(member())}"}
    with rates(user="3/day"):
        answers = [client.get("/api/v1/jobs/", **auth) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    throttled = answers[-1]
    assert throttled["Content-Type"] == "application/json"
    assert "throttled" in throttled.json()["detail"]
    assert 0 < int(throttled["Retry-After"]) <= 86400


def test_given_two_tokens_then_each_has_its_own_budget(client):
    first = {"HTTP_AUTHORIZATION": f"Bearer {_token(member())}"}
    second = {"HTTP_AUTHORIZATION": f"Bearer {_token(member())}"}
    with rates(user="2/day"):
        assert [client.get("/api/v1/jobs/", **first).status_code for _ in range(3)] == [
            200, 200, 429,
        ]  # fmt: skip
        assert client.get("/api/v1/jobs/", **second).status_code == 200


def test_given_anonymous_callers_behind_a_trusted_proxy_then_each_address_is_counted_apart(
    client,
):
    def call(address):
        return client.get(
            "/api/v1/products/", HTTP_X_FORWARDED_FOR=address, REMOTE_ADDR="10.0.0.2"
        ).status_code

    with rates(anon="2/day", proxies=1):
        assert [call("203.0.113.1") for _ in range(3)] == [200, 200, 429]
        assert call("203.0.113.2") == 200
        # What the client wrote itself comes before what our proxy appended: not believed.
        assert call("198.51.100.7, 203.0.113.1") == 429


def test_given_no_trusted_proxy_then_x_forwarded_for_is_ignored(client):
    def call(address):
        return client.get("/api/v1/products/", HTTP_X_FORWARDED_FOR=address).status_code

    with rates(anon="2/day", proxies=0):
        assert [call(f"203.0.113.{n}") for n in range(1, 4)] == [200, 200, 429]


def test_the_api_and_the_sign_in_limits_trust_the_same_number_of_proxies():
    assert settings.REST_FRAMEWORK["NUM_PROXIES"] == settings.TRUSTED_PROXY_HOPS
    assert settings.ALLAUTH_TRUSTED_PROXY_COUNT == settings.TRUSTED_PROXY_HOPS


def test_the_default_rates_leave_room_for_a_busy_automation():
    count, seconds = parse_rate(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["user"])
    assert count / seconds >= 500  # per token: the 64-client load benchmark runs from one
