from catalog.models.inference import InferenceKey
from catalog.models.orders import Order, OrderEvent, OrderNode, OrderState, OrderStep
from catalog.models.products import Product

__all__ = ["InferenceKey", "Order", "OrderEvent", "OrderNode", "OrderState", "OrderStep", "Product"]
