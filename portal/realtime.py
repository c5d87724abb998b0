"""Live events to browsers: services publish to a channel-layer group, consumers forward them.

The channel layer is Redis (the embedded one or REDIS_URL), so an event sent from a Celery
worker process reaches a websocket served by any web process.

Every socket also joins its user's group, where the services tell it that the user lost access
to an organization (removed, or a role that may no longer view); the socket then checks again
whether its user may still see what it streams.
"""

import asyncio
import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

logger = logging.getLogger(__name__)


def job_group(job_id: int) -> str:
    return f"job.{job_id}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def event_publish(*, group: str, payload: dict[str, Any]) -> bool:
    """Send `payload` to every websocket in `group`. Call it from transaction.on_commit.

    Live events only hurry the pages along (they read the truth from the database too), so a
    channel layer that is slow or away costs at most REALTIME_PUBLISH_TIMEOUT_SECONDS and a log
    line, never the work that published. Returns whether the event went out."""
    layer = get_channel_layer()
    message = {"type": "event.forward", "payload": payload}

    async def send() -> None:
        timeout = settings.REALTIME_PUBLISH_TIMEOUT_SECONDS
        await asyncio.wait_for(layer.group_send(group, message), timeout)

    try:
        async_to_sync(send)()
    except Exception as exc:  # whatever the layer raised, the work that published stands
        logger.warning("live event for %s not sent: %r", group, exc)
        return False
    return True


def access_revoked_publish(*, user_id: int) -> None:
    """Tell every open socket of the user to check its access again. Call it from
    transaction.on_commit, so the check sees the change."""
    layer = get_channel_layer()
    async_to_sync(layer.group_send)(user_group(user_id), {"type": "access.revoked"})
