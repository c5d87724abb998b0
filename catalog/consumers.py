from catalog import realtime
from catalog.selectors.orders import order_get_for_user, order_snapshot
from portal.consumers import SnapshotConsumer


class OrderProgressConsumer(SnapshotConsumer):
    """Streams one order's steps, progress and handover to a member who may see it."""

    kwarg = "order_id"

    def group_for(self, object_id: int) -> str:
        return realtime.order_group(object_id)

    def snapshot(self, user, object_id: int) -> dict:
        return order_snapshot(order_get_for_user(user=user, order_id=object_id))
