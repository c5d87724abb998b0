"""Per-key limits, enforced atomically in Redis (the embedded Redis by default): requests and
tokens per minute (the key's own, and its organization's for all its keys together), the key's
monthly budget and the organization's allowance, each checked and taken in one Lua script, so
concurrent requests on many workers never overshoot. A request reserves its prompt tokens plus
max_tokens (and their price) before it is sent and settles to the actual count after."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import cache

import redis
from django.conf import settings

MICRO = 1_000_000  # money is counted in micro-dollars in Redis

TAKE = """
local rpm, tpm, tokens = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local budget, cost, ttl = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local org_rpm, org_tpm = tonumber(ARGV[7]), tonumber(ARGV[8])
local requests = tonumber(redis.call('GET', KEYS[1]) or '0')
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
local spent = tonumber(redis.call('GET', KEYS[3]) or '0')
local org_requests = tonumber(redis.call('GET', KEYS[6]) or '0')
local org_used = tonumber(redis.call('GET', KEYS[7]) or '0')
local allowance = redis.call('GET', KEYS[5])
local left = tonumber(allowance or '0')
local function refuse(reason)
  return {0, reason, requests, used, org_requests, org_used, allowance and left or false}
end
if redis.call('EXISTS', KEYS[4]) == 1 then return refuse('blocked') end
if allowance and left < cost then return refuse('credit') end
if rpm > 0 and requests + 1 > rpm then return refuse('requests') end
if tpm > 0 and used + tokens > tpm then return refuse('tokens') end
if org_rpm > 0 and org_requests + 1 > org_rpm then return refuse('requests') end
if org_tpm > 0 and org_used + tokens > org_tpm then return refuse('tokens') end
if budget >= 0 and spent + cost > budget then return refuse('budget') end
redis.call('INCR', KEYS[1]); redis.call('EXPIRE', KEYS[1], ttl)
redis.call('INCRBY', KEYS[2], tokens); redis.call('EXPIRE', KEYS[2], ttl)
redis.call('INCRBY', KEYS[3], cost); redis.call('EXPIRE', KEYS[3], 40 * 86400)
redis.call('INCR', KEYS[6]); redis.call('EXPIRE', KEYS[6], ttl)
redis.call('INCRBY', KEYS[7], tokens); redis.call('EXPIRE', KEYS[7], ttl)
if allowance then left = redis.call('DECRBY', KEYS[5], cost) end
return {1, '', requests + 1, used + tokens, org_requests + 1, org_used + tokens,
        allowance and left or false}
"""

# Settle in one round trip: tokens (the key's and the organization's) and key spend by the
# difference, the organization's allowance (only where one is set), and the request's usage
# queued for the ledger.
SETTLE = """
redis.call('INCRBY', KEYS[1], ARGV[1]); redis.call('EXPIRE', KEYS[1], 120)
redis.call('INCRBY', KEYS[5], ARGV[1]); redis.call('EXPIRE', KEYS[5], 120)
redis.call('INCRBY', KEYS[2], ARGV[2])
if redis.call('EXISTS', KEYS[3]) == 1 then redis.call('DECRBY', KEYS[3], ARGV[2]) end
if ARGV[3] ~= '' then redis.call('RPUSH', KEYS[4], ARGV[3]) end
return 1
"""

# What an organization's keys may use together per minute, as OpenAI limits an organization
# (a key's own limits, where set, apply as well). Generous: they keep one tenant from taking
# the shared backends, and they are what the x-ratelimit-* headers report for a key without
# limits of its own.
ORGANIZATION_RPM = 30_000
ORGANIZATION_TPM = 150_000_000


def organization_limits() -> tuple[int, int]:
    """(requests, tokens) per minute for an organization's keys together."""
    return (
        int(getattr(settings, "GATEWAY_ORGANIZATION_RPM", ORGANIZATION_RPM)),
        int(getattr(settings, "GATEWAY_ORGANIZATION_TPM", ORGANIZATION_TPM)),
    )


def usage_key() -> str:
    """The Redis list that settled calls push their usage onto (catalog.gateway.usage drains it)."""
    return f"{settings.QUEUE_PREFIX}:gw:usage"


@cache
def redis_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


@cache
def _take():
    return redis_client().register_script(TAKE)


@cache
def _settle():
    return redis_client().register_script(SETTLE)


_async_scripts: dict = {}


def _async_take():
    """The script on an asyncio Redis client of the running event loop (one per loop)."""
    import asyncio

    import redis.asyncio as aioredis

    loop = asyncio.get_running_loop()
    if loop not in _async_scripts:
        client = aioredis.Redis.from_url(settings.REDIS_URL)
        scripts = (client.register_script(TAKE), client.register_script(SETTLE))
        _async_scripts[loop] = (client, *scripts)
    return _async_scripts[loop]


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # "", "requests", "tokens", "budget", "credit" or "blocked"
    requests: int  # the key's requests this minute (this one included when allowed)
    tokens: int  # the key's tokens reserved this minute
    reset_seconds: int
    organization_requests: int = 0  # the same for all the organization's keys
    organization_tokens: int = 0
    allowance_micro: int | None = None  # what the organization may still spend, if limited


def _keys(key_id: int, organization_id: int, minute: int, month: str) -> list[str]:
    prefix = settings.QUEUE_PREFIX
    return [
        f"{prefix}:gw:rpm:{key_id}:{minute}",
        f"{prefix}:gw:tpm:{key_id}:{minute}",
        f"{prefix}:gw:spend:{key_id}:{month}",
        f"{prefix}:gw:blocked:{organization_id}",
        f"{prefix}:gw:allowance:{organization_id}",
        f"{prefix}:gw:org-rpm:{organization_id}:{minute}",
        f"{prefix}:gw:org-tpm:{organization_id}:{minute}",
    ]


def _arguments(key_id, organization_id, rpm, tpm, tokens, budget_micro, cost_micro, now):
    minute = int(now // 60)
    month = time.strftime("%Y-%m", time.gmtime(now))
    keys = _keys(key_id, organization_id, minute, month)
    budget = -1 if budget_micro is None else budget_micro
    org_rpm, org_tpm = organization_limits()
    args = [rpm or 0, tpm or 0, tokens, budget, cost_micro, 120, org_rpm, org_tpm]
    return keys, args, minute


def _decision(answer, now: float) -> Decision:
    allowed, reason, requests, used, org_requests, org_used, left = answer
    reason = reason.decode() if isinstance(reason, bytes) else reason
    return Decision(
        bool(allowed),
        reason,
        int(requests),
        int(used),
        60 - int(now % 60),
        int(org_requests),
        int(org_used),
        None if left is None else int(left),
    )


def take(
    *,
    key_id: int,
    organization_id: int,
    rpm: int | None,
    tpm: int | None,
    tokens: int,
    budget_micro: int | None,
    cost_micro: int,
    now: float | None = None,
) -> tuple[Decision, int]:
    """Reserve one request, `tokens` tokens and `cost_micro` of the key's monthly budget.
    Returns the decision and the minute the reservation was taken in (settle in the same)."""
    now = time.time() if now is None else now
    keys, args, minute = _arguments(
        key_id, organization_id, rpm, tpm, tokens, budget_micro, cost_micro, now
    )
    return _decision(_take()(keys=keys, args=args), now), minute


async def take_async(
    *,
    key_id: int,
    organization_id: int,
    rpm: int | None,
    tpm: int | None,
    tokens: int,
    budget_micro: int | None,
    cost_micro: int,
) -> tuple[Decision, int]:
    """take() for the ASGI gateway."""
    now = time.time()
    keys, args, minute = _arguments(
        key_id, organization_id, rpm, tpm, tokens, budget_micro, cost_micro, now
    )
    _, script, _ = _async_take()
    return _decision(await script(keys=keys, args=args), now), minute


def _settle_call(key_id, organization_id, minute, tokens, cost_micro, usage):
    month = time.strftime("%Y-%m", time.gmtime(minute * 60))
    keys = _keys(key_id, organization_id, minute, month)
    record = json.dumps(usage) if usage is not None else ""
    return [keys[1], keys[2], keys[4], usage_key(), keys[6]], [tokens, cost_micro, record]


def settle(
    *,
    key_id: int,
    organization_id: int,
    minute: int,
    tokens: int,
    cost_micro: int,
    usage: dict | None = None,
) -> None:
    """Correct a reservation by the difference to what was used (negative: give back)."""
    keys, args = _settle_call(key_id, organization_id, minute, tokens, cost_micro, usage)
    _settle()(keys=keys, args=args)


async def settle_async(
    *,
    key_id: int,
    organization_id: int,
    minute: int,
    tokens: int,
    cost_micro: int,
    usage: dict | None = None,
) -> None:
    """settle() for the gateway, queueing the request's usage for the ledger in the same round
    trip to Redis."""
    keys, args = _settle_call(key_id, organization_id, minute, tokens, cost_micro, usage)
    _, _, script = _async_take()
    await script(keys=keys, args=args)


def allowance_refresh(*, organization_id: int) -> None:
    """Set what the organization may still spend through the gateway this month (its budget
    or, without a card, its prepaid credit, less what it used), or clear it when nothing
    limits it. Run when a key is made, whenever its usage reaches the ledger, and every minute
    for every organization with a live key (a card or credit added shows within a minute)."""
    from billing.services.budgets import spending_allowance
    from portal.models import Organization

    key = _keys(0, organization_id, 0, "")[4]
    allowance = spending_allowance(organization=Organization.objects.get(pk=organization_id))
    if allowance is None:
        redis_client().delete(key)
    else:
        redis_client().set(key, int(allowance * MICRO))


def organization_block(*, organization_id: int, blocked: bool, seconds: int | None = None) -> None:
    """A spending limit reached (or lifted): every key of the organization answers 402, until
    `seconds` have passed (the limits are monthly) or it is lifted."""
    key = _keys(0, organization_id, 0, "")[3]
    if blocked:
        redis_client().set(key, 1, ex=seconds)
    else:
        redis_client().delete(key)
