from rest_framework.routers import DefaultRouter

from fabric.api.networks import NetworkViewSet
from fabric.api.views import VIEWSETS, ChangeRecordViewSet

router = DefaultRouter(trailing_slash=True)
for prefix, viewset in VIEWSETS.items():
    router.register(f"inventory/{prefix}", viewset, basename=f"inventory-{prefix}")
router.register("inventory/changes", ChangeRecordViewSet, basename="inventory-changes")
router.register("networks", NetworkViewSet, basename="network")
urlpatterns = router.urls
