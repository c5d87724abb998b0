"""/healthz: is each part of the runtime answering? JSON, 200 when all are, 503 otherwise."""

import time
import uuid

import redis
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from kombu import Connection


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _broker() -> None:
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=2) as conn:
        conn.ensure_connection(max_retries=1)


def _redis() -> None:
    redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2).ping()


def _channel_layer() -> None:
    """A message sent to a fresh channel must come back from the layer."""
    layer = get_channel_layer()

    async def round_trip() -> None:
        channel = await layer.new_channel()
        marker = uuid.uuid4().hex
        await layer.send(channel, {"type": "health.ping", "marker": marker})
        message = await layer.receive(channel)
        if message.get("marker") != marker:
            raise RuntimeError("channel layer returned a different message")

    async_to_sync(round_trip)()


CHECKS = {
    "database": _database,
    "broker": _broker,
    "redis": _redis,
    "channel_layer": _channel_layer,
}


@never_cache
@require_GET
def healthz(request):
    report, healthy = {}, True
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            check()
            report[name] = {"ok": True}
        except Exception as exc:  # a health page reports every failure, whatever its type
            healthy = False
            report[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
        report[name]["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return JsonResponse({"ok": healthy, "checks": report}, status=200 if healthy else 503)
