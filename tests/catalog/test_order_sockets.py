"""An order's websocket: its own organization gets the snapshot first; anyone else is closed
before joining the group."""

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from catalog.consumers import OrderProgressConsumer
from catalog.models import Order
from catalog.services.products import product_upsert
from portal.consumers import CLOSE_NOT_FOUND, CLOSE_UNAUTHENTICATED
from tests.portal.factories import member, organization_of

pytestmark = pytest.mark.django_db(transaction=True)


def _first_frame(user, order_id):
    async def run():
        communicator = WebsocketCommunicator(
            OrderProgressConsumer.as_asgi(), f"/ws/orders/{order_id}/"
        )
        communicator.scope["user"] = user
        communicator.scope["url_route"] = {"kwargs": {"order_id": order_id}}
        connected, code = await communicator.connect()
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
