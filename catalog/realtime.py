"""Live order progress: each change is published to the order's channel-layer group, where the
order page's websocket (catalog.consumers) forwards it."""

from portal.realtime import event_publish


def order_group(order_id: int) -> str:
    return f"order.{order_id}"


def order_publish(*, order_id: int) -> None:
    from catalog.models import Order
    from catalog.selectors_orders import order_snapshot

    order = Order.objects.filter(pk=order_id).first()
    if order is not None:
        event_publish(group=order_group(order_id), payload=order_snapshot(order))
