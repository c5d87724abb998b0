"""Live events to browsers: services publish to a channel-layer group, consumers forward them.

The channel layer is Redis (the embedded one or REDIS_URL), so an event sent from a Celery
worker process reaches a websocket served by any web process.
"""

from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer


def job_group(job_id: int) -> str:
    return f"job.{job_id}"


def event_publish(*, group: str, payload: dict[str, Any]) -> None:
    """Send `payload` to every websocket in `group`. Call it from transaction.on_commit."""
    layer = get_channel_layer()
    async_to_sync(layer.group_send)(group, {"type": "event.forward", "payload": payload})
