"""Inference keys (hashed, shown once, revoked at once, expiring, per-model) and their limits
in Redis: requests and tokens per minute, a monthly budget, reservations settled to the actual,
exact under concurrency, and 402 for an organization past its spending limit."""

import threading
import uuid
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.test import override_settings
from django.utils import timezone

from billing.services.budgets import spending_limit_reached
from catalog.gateway import limits
from catalog.gateway.keys import inference_key_create, inference_key_lookup, inference_key_revoke
from catalog.models import InferenceKey
from portal.services.audit import Actor
from tests.portal.factories import member

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def own_counters():
    with override_settings(QUEUE_PREFIX=f"test-gw-{uuid.uuid4().hex[:8]}"):
        yield


def _key(**limits_):
    user = member()
    return inference_key_create(
        by=user.memberships.get(), name="app", actor=Actor(user=user), **limits_
    )


def test_a_key_is_stored_hashed_shown_once_cached_and_dead_at_once_when_revoked(
    django_capture_on_commit_callbacks,
):
    key, secret = _key(allowed_models=["smollm2-135m"])
    assert secret.startswith(f"sk-sf-{key.prefix}-") and secret not in str(
        InferenceKey.objects.values().get(pk=key.pk)
    )
    info = inference_key_lookup(secret)
    assert info.id == key.pk and info.allows("smollm2-135m") and not info.allows("gpt-4")
    assert inference_key_lookup(secret + "x") is None
    assert inference_key_lookup("sk-other") is None
    owner = key.organization.memberships.get()
    stranger = member().memberships.get()
    with pytest.raises(PermissionDenied):
        inference_key_revoke(by=stranger, key=key, actor=Actor(user=stranger.user))
    with django_capture_on_commit_callbacks(execute=True):
        inference_key_revoke(by=owner, key=key, actor=Actor(user=owner.user))
    assert inference_key_lookup(secret) is None  # the cached entry went with the revocation


def test_an_expired_key_says_so():
    _, secret = _key(expires_at=timezone.now() + timedelta(hours=1))
    info = inference_key_lookup(secret)
    assert not info.expired(timezone.now().timestamp())
    assert info.expired((timezone.now() + timedelta(hours=2)).timestamp())


def _take(key, now, tokens=0, cost=0, **limits_):
    decision, _ = limits.take(
        key_id=key.pk, organization_id=key.organization_id, tokens=tokens, cost_micro=cost,
        now=now, **{"rpm": None, "tpm": None, "budget_micro": None, **limits_},
    )  # fmt: skip
    return decision


def test_requests_and_tokens_per_minute_are_counted_per_minute_with_the_time_to_reset():
    key, _ = _key()
    now = 1_800_000_010.0  # ten seconds into a minute
    assert [_take(key, now, rpm=3).allowed for _ in range(4)] == [True, True, True, False]
    refused = _take(key, now, rpm=3)
    assert refused.reason == "requests" and refused.reset_seconds == 50
    assert _take(key, now + 60, rpm=3).allowed  # a new minute
    assert _take(key, now + 120, tokens=60, tpm=100).allowed
    assert _take(key, now + 120, tokens=50, tpm=100).reason == "tokens"
    limits.settle(
        key_id=key.pk,
        organization_id=key.organization_id,
        minute=int((now + 120) // 60),
        tokens=-30,
        cost_micro=0,
    )  # fmt: skip  (the request used 30 of the 60 it reserved)
    assert _take(key, now + 120, tokens=50, tpm=100).allowed


def test_the_monthly_budget_is_reserved_before_and_settled_after():
    key, _ = _key()
    now = 1_800_000_000.0
    budget = 1 * limits.MICRO
    assert _take(key, now, cost=600_000, budget_micro=budget).allowed
    assert _take(key, now, cost=600_000, budget_micro=budget).reason == "budget"
    limits.settle(
        key_id=key.pk, organization_id=key.organization_id, minute=int(now // 60), tokens=0,
        cost_micro=-500_000,
    )  # fmt: skip
    assert _take(key, now, cost=600_000, budget_micro=budget).allowed


def test_concurrent_requests_never_overshoot_the_limit():
    key, _ = _key()
    now = 1_800_000_000.0
    results = []

    def burst():
        for _ in range(25):
            results.append(_take(key, now, rpm=50).allowed)

    threads = [threading.Thread(target=burst) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 200 and results.count(True) == 50


def test_an_organization_past_its_spending_limit_is_refused_on_every_key():
    key, _ = _key()
    now = timezone.now().timestamp()
    assert _take(key, now).allowed
    spending_limit_reached.send(sender=None, organization=key.organization, reason="budget")
    assert _take(key, now).reason == "blocked"
    limits.organization_block(organization_id=key.organization_id, blocked=False)
    assert _take(key, now).allowed


def test_an_organization_paying_from_prepaid_credit_is_refused_what_its_credit_cannot_cover(
    django_capture_on_commit_callbacks,
):
    from decimal import Decimal

    from billing.models import CreditGrant

    user = member()
    organization = user.memberships.get().organization
    CreditGrant.objects.create(organization=organization, amount=Decimal("0.01"))  # no card
    with django_capture_on_commit_callbacks(execute=True):
        key, _ = inference_key_create(by=user.memberships.get(), name="app", actor=Actor(user=user))
    now = timezone.now().timestamp()
    assert _take(key, now, cost=20_000).reason == "credit"  # $0.02 of a $0.01 credit
    assert _take(key, now, cost=6_000).allowed
    assert _take(key, now, cost=6_000).reason == "credit"  # the first took $0.006 of it
    limits.settle(  # it used only $0.001: the rest comes back
        key_id=key.pk, organization_id=organization.pk, minute=int(now // 60), tokens=0,
        cost_micro=-5_000,
    )  # fmt: skip
    assert _take(key, now, cost=6_000).allowed


def test_a_card_added_lifts_the_credit_allowance_within_the_minutely_refresh(
    django_capture_on_commit_callbacks,
):
    from billing.models import Card
    from catalog.tasks import gateway_allowances

    with django_capture_on_commit_callbacks(execute=True):
        key, _ = _key()  # no card, no credit: nothing may be spent
    now = timezone.now().timestamp()
    assert _take(key, now, cost=1).reason == "credit"
    Card.objects.create(
        organization=key.organization, stripe_payment_method_id="pm_test", brand="visa",
        last4="4242", exp_month=12, exp_year=2031, is_default=True,
    )  # fmt: skip
    assert gateway_allowances() >= 1
    assert _take(key, now, cost=10 * limits.MICRO).allowed


def test_an_organizations_keys_share_its_per_minute_limits_and_see_its_allowance(
    django_capture_on_commit_callbacks,
):
    from decimal import Decimal

    from billing.models import CreditGrant

    user = member()
    organization = user.memberships.get().organization
    CreditGrant.objects.create(organization=organization, amount=Decimal("1.00"))  # no card
    with django_capture_on_commit_callbacks(execute=True):
        first, _ = inference_key_create(by=user.memberships.get(), name="a", actor=Actor(user=user))
    second, _ = inference_key_create(by=user.memberships.get(), name="b", actor=Actor(user=user))
    now = 1_800_000_000.0
    with override_settings(GATEWAY_ORGANIZATION_RPM=3, GATEWAY_ORGANIZATION_TPM=1000):
        taken = [_take(key, now, tokens=100, cost=1_000) for key in (first, second, first)]
        assert [d.organization_requests for d in taken] == [1, 2, 3]
        assert [d.requests for d in taken] == [1, 1, 2]  # each key counts its own too
        assert taken[-1].organization_tokens == 300
        assert taken[-1].allowance_micro == 1 * limits.MICRO - 3_000
        assert _take(second, now, tokens=1).reason == "requests"  # the fourth of the minute
        assert _take(second, now + 60, tokens=1001).reason == "tokens"  # a new minute
        assert _take(second, now + 60, tokens=1000).allowed
