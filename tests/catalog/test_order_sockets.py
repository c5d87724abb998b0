"""An order's websocket: its own organization gets the snapshot first; anyone else is closed
before joining the group; a member who loses access is closed out at once."""

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from catalog.consumers import OrderProgressConsumer
from catalog.models import Order
from catalog.realtime import order_publish
from catalog.services.products import product_upsert
from portal.consumers import CLOSE_FORBIDDEN, CLOSE_NOT_FOUND, CLOSE_UNAUTHENTICATED
from portal.models import Membership
from portal.services.audit import Actor
from portal.services.organizations import membership_remove, membership_role_change
from tests.portal.factories import member, organization_of

pytestmark = pytest.mark.django_db(transaction=True)


def _first_frame(user, order_id):
    async def run():
        communicator = WebsocketCommunicator(
            OrderProgressConsumer.as_asgi(), f"/ws/orders/{order_id}/"
        )
        communicator.scope["user"] = user
        communicator.scope["url_route"] = {"kwargs": {"order_id": order_id}}
        connected, code = await communicator.connect(timeout=5)
        if not connected:
            return connected, code, None
        frame = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return connected, code, frame

    return async_to_sync(run)()


def test_an_orders_socket_serves_its_organization_and_closes_on_everyone_else():
    owner, stranger = member(), member()
    product = product_upsert(slug="bare-metal", name="Bare metal", kind="bare_metal", summary="-")
    order = Order.objects.create(
        organization=organization_of(owner), created_by=owner, product=product,
        offering="bare_metal", spec={"gpu_model": "X", "nodes": 1}, hourly_quote=1,
    )  # fmt: skip

    connected, _, frame = _first_frame(owner, order.pk)
    assert connected and frame["id"] == order.pk and frame["state"] == "placed"
    assert _first_frame(stranger, order.pk) == (False, CLOSE_NOT_FOUND, None)
    assert _first_frame(AnonymousUser(), order.pk) == (False, CLOSE_UNAUTHENTICATED, None)


def _order_of(owner):
    product = product_upsert(slug="bare-metal", name="Bare metal", kind="bare_metal", summary="-")
    return Order.objects.create(
        organization=organization_of(owner), created_by=owner, product=product,
        offering="bare_metal", spec={"gpu_model": "X", "nodes": 1}, hourly_quote=1,
    )  # fmt: skip


def _watch_while(change, *, owner, colleague, order):
    """Owner and colleague both watch the order; `change` (a service call) runs; then the order
    publishes an event. Returns what the colleague's socket got after the change and the
    owner's next frame."""

    async def run():
        sockets = {}
        for who in (owner, colleague):
            socket = WebsocketCommunicator(OrderProgressConsumer.as_asgi(), "/ws/orders/")
            socket.scope["user"] = who
            socket.scope["url_route"] = {"kwargs": {"order_id": order.pk}}
            assert (await socket.connect(timeout=5))[0]
            assert (await socket.receive_json_from(timeout=5))["id"] == order.pk
            sockets[who] = socket
        await database_sync_to_async(change)()
        closed = await sockets[colleague].receive_output(timeout=10)
        await database_sync_to_async(order_publish)(order_id=order.pk)
        owners_frame = await sockets[owner].receive_json_from(timeout=10)
        # The owner heard the event: had the colleague's socket still been in the group, it
        # would have it by now.
        colleague_heard_nothing = await sockets[colleague].receive_nothing(timeout=0.5)
        for socket in sockets.values():
            await socket.disconnect()
        return closed, colleague_heard_nothing, owners_frame

    return async_to_sync(run)()


def test_a_member_removed_from_the_organization_is_closed_out_and_hears_no_later_event():
    owner = member()
    colleague = member(role=Membership.Role.MEMBER, organization=organization_of(owner))
    order = _order_of(owner)

    def remove():
        membership_remove(
            by=owner.memberships.get(), membership=colleague.memberships.get(),
            actor=Actor(user=owner),
        )  # fmt: skip

    closed, heard_nothing, owners_frame = _watch_while(
        remove, owner=owner, colleague=colleague, order=order
    )
    assert closed == {"type": "websocket.close", "code": CLOSE_FORBIDDEN}
    assert heard_nothing
    assert owners_frame["id"] == order.pk


def test_a_member_whose_role_may_no_longer_view_is_closed_out():
    owner = member()
    colleague = member(role=Membership.Role.MEMBER, organization=organization_of(owner))
    order = _order_of(owner)

    def demote():
        membership_role_change(
            by=owner.memberships.get(), membership=colleague.memberships.get(),
            role=Membership.Role.BILLING, actor=Actor(user=owner),
        )  # fmt: skip

    closed, heard_nothing, _ = _watch_while(demote, owner=owner, colleague=colleague, order=order)
    assert closed == {"type": "websocket.close", "code": CLOSE_FORBIDDEN}
    assert heard_nothing
