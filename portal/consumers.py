"""Websocket consumers: authorize on connect, then forward channel-layer events; authorize
again whenever the user loses access to an organization, and close if it is gone."""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.http import Http404

from portal import realtime, selectors

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404


class SnapshotConsumer(AsyncJsonWebsocketConsumer):
    """Streams one object's changes to a user allowed to see it: the current snapshot on
    connect, then every event published to its group, until the user may no longer see it.
    Subclasses name the URL kwarg, the group and the snapshot (which raises Http404 for anyone
    else)."""

    kwarg: str

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.object_id: int | None = None
        self.joined: list[str] = []
        self.revoked = False

    def group_for(self, object_id: int) -> str:
        raise NotImplementedError

    def snapshot(self, user, object_id: int) -> dict:
        raise NotImplementedError

    async def connect(self) -> None:
        user = self.scope["user"]
        if not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.object_id = int(self.scope["url_route"]["kwargs"][self.kwarg])
        # The user's group first: access taken away while this socket authorizes still arrives
        # (after connect returns) and is checked then.
        await self._join(realtime.user_group(user.pk))
        try:
            # Authorize before joining the object's group, so no event reaches a stranger.
            await database_sync_to_async(self.snapshot)(user, self.object_id)
        except Http404:
            await self._leave()
            await self.close(code=CLOSE_NOT_FOUND)
            return
        await self._join(self.group_for(self.object_id))
        await self.accept()
        # Whatever happened before we joined the group arrives as the current state.
        await self.send_json(await database_sync_to_async(self.snapshot)(user, self.object_id))

    async def disconnect(self, code: int) -> None:
        await self._leave()

    async def event_forward(self, event: dict) -> None:
        # Events already queued for this channel when access was revoked are dropped.
        if not self.revoked:
            await self.send_json(event["payload"])

    async def access_revoked(self, event: dict) -> None:
        """The user was removed from an organization or lost a role that may view: close the
        socket unless what it streams is still visible to them (another membership, their
        own order)."""
        if self.revoked or self.object_id is None:
            return
        try:
            await database_sync_to_async(self.snapshot)(self.scope["user"], self.object_id)
        except Http404:
            self.revoked = True
            await self._leave()
            await self.close(code=CLOSE_FORBIDDEN)

    async def _join(self, group: str) -> None:
        await self.channel_layer.group_add(group, self.channel_name)
        self.joined.append(group)

    async def _leave(self) -> None:
        for group in self.joined:
            await self.channel_layer.group_discard(group, self.channel_name)
        self.joined = []


class JobProgressConsumer(SnapshotConsumer):
    """Streams one job's progress to a member of the job's organization."""

    kwarg = "job_id"

    def group_for(self, object_id: int) -> str:
        return realtime.job_group(object_id)

    def snapshot(self, user, object_id: int) -> dict:
        return selectors.job_snapshot(selectors.job_get_for_user(user=user, job_id=object_id))
