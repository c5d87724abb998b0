"""Websocket consumers: authorize on connect, then forward channel-layer events."""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.http import Http404

from portal import realtime, selectors

CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404


class SnapshotConsumer(AsyncJsonWebsocketConsumer):
    """Streams one object's changes to a user allowed to see it: the current snapshot on
    connect, then every event published to its group. Subclasses name the URL kwarg, the group
    and the snapshot (which raises Http404 for anyone else)."""

    kwarg: str
    group: str | None = None

    def group_for(self, object_id: int) -> str:
        raise NotImplementedError

    def snapshot(self, user, object_id: int) -> dict:
        raise NotImplementedError

    async def connect(self) -> None:
        user = self.scope["user"]
        if not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        object_id = int(self.scope["url_route"]["kwargs"][self.kwarg])
        try:
            # Authorize before joining the group, so no event reaches a stranger.
            await database_sync_to_async(self.snapshot)(user, object_id)
        except Http404:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.group = self.group_for(object_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        # Whatever happened before we joined the group arrives as the current state.
        await self.send_json(await database_sync_to_async(self.snapshot)(user, object_id))

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def event_forward(self, event: dict) -> None:
        await self.send_json(event["payload"])


class JobProgressConsumer(SnapshotConsumer):
    """Streams one job's progress to a member of the job's organization."""

    kwarg = "job_id"

    def group_for(self, object_id: int) -> str:
        return realtime.job_group(object_id)

    def snapshot(self, user, object_id: int) -> dict:
        return selectors.job_snapshot(selectors.job_get_for_user(user=user, job_id=object_id))
