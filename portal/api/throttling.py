"""API rate limits (REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"]): one budget per API token,
signed-in user or node agent, and one per client address for anonymous calls. Rates come from
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] ("user", "anon"; `<count>/<second|minute|hour|day>`)
and are read on every request, so a test's override_settings takes effect.

Counts live in the Django cache (Redis, shared by every web process) as one integer per client
and fixed window: an increment per request, where DRF's own throttles rewrite a list of every
request's timestamp. The client address is REMOTE_ADDR, or the X-Forwarded-For entry added by
the nearest of the TRUSTED_PROXY_HOPS proxies (REST_FRAMEWORK["NUM_PROXIES"]), the same setting
the sign-in and sign-up limits use.

When the cache cannot be reached the request is let through: a Redis outage must not take the
whole API down with it."""

import logging
import re
import time

from django.core.cache import cache
from redis.exceptions import RedisError
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from portal.models import ApiToken

logger = logging.getLogger("portal.api")

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """'6000/minute' -> (6000, 60): requests allowed per window of that many seconds."""
    count, _, period = rate.partition("/")
    return int(count), PERIODS[period.strip()[0].lower()]


def client_key(request) -> str | None:
    """Who pays for this request: the token, else the user, else another credential (a node
    agent's node); None for an anonymous caller."""
    auth = request.auth
    if isinstance(auth, ApiToken):
        return f"token:{auth.pk}"
    user = request.user
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    if auth is not None and getattr(auth, "pk", None) is not None:
        return f"{type(auth).__name__.lower()}:{auth.pk}"
    return None


def _count(key: str, timeout: int) -> int | None:
    """Add one to `key`'s counter and return it; None when the cache is unavailable."""
    try:
        try:
            return cache.incr(key)
        except ValueError:  # the window's first request (or its key just expired)
            if cache.add(key, 1, timeout):
                return 1
            return cache.incr(key)
    except (RedisError, OSError) as error:
        logger.warning("API throttle skipped, the cache is unavailable: %s", error)
        return None


class FixedWindowThrottle(BaseThrottle):
    scope = ""

    def identify(self, request) -> str | None:
        raise NotImplementedError

    def allow_request(self, request, view) -> bool:
        self.seconds_left = None
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
        who = self.identify(request)
        if not rate or who is None:
            return True
        limit, window = parse_rate(rate)
        now = time.time()
        start = int(now // window) * window
        # The window's start is in the key, so a key outliving its window is never read again.
        count = _count(f"throttle:{self.scope}:{who}:{start}", timeout=2 * window)
        if count is None or count <= limit:
            return True
        self.seconds_left = start + window - now
        return False

    def wait(self) -> float | None:
        return self.seconds_left


class ClientRateThrottle(FixedWindowThrottle):
    """Per token, user or node: the "user" rate."""

    scope = "user"

    def identify(self, request) -> str | None:
        return client_key(request)


class AnonymousRateThrottle(FixedWindowThrottle):
    """Per client address, for calls with no credential: the "anon" rate."""

    scope = "anon"

    def identify(self, request) -> str | None:
        if client_key(request) is not None:
            return None
        # Only address characters reach the cache key, however the header was spelled.
        return "ip:" + re.sub(r"[^0-9A-Za-z:.]", "", self.get_ident(request) or "")[:64]
