from django.urls import path
from rest_framework.routers import DefaultRouter

from catalog.api.capacity import (
    AllocationViewSet,
    AvailabilityView,
    QuotaViewSet,
    ReservationViewSet,
)
from catalog.api.orders import OrderViewSet
from catalog.api.views import ProductViewSet

router = DefaultRouter(trailing_slash=True)
router.register("products", ProductViewSet, basename="product")
router.register("capacity/allocations", AllocationViewSet, basename="allocation")
router.register("capacity/reservations", ReservationViewSet, basename="reservation")
router.register("capacity/quotas", QuotaViewSet, basename="quota")
router.register("orders", OrderViewSet, basename="order")

urlpatterns = [
    path("capacity/availability/", AvailabilityView.as_view(), name="capacity-availability"),
    *router.urls,
]
