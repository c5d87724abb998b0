"""Live order progress: each change is published to the order's channel-layer group, where the
order page's websocket (catalog.consumers) forwards it."""

import logging

from portal.realtime import event_publish

logger = logging.getLogger(__name__)


def order_group(order_id: int) -> str:
    return f"order.{order_id}"


def order_publish(*, order_id: int) -> None:
    """Best effort: a step that published must not fail for it, and the page reloads the
    snapshot from the database when events stop coming."""
    from catalog.models import Order
    from catalog.selectors.orders import order_snapshot

    try:
        order = Order.objects.filter(pk=order_id).first()
        if order is not None:
            event_publish(group=order_group(order_id), payload=order_snapshot(order))
    except Exception:  # the snapshot reads the database, which may be the service away
        logger.warning("order %s: live snapshot not published", order_id, exc_info=True)
