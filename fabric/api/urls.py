from rest_framework.routers import DefaultRouter

from fabric.api.views import VIEWSETS, ChangeRecordViewSet

router = DefaultRouter(trailing_slash=True)
for prefix, viewset in VIEWSETS.items():
    router.register(f"inventory/{prefix}", viewset, basename=f"inventory-{prefix}")
router.register("inventory/changes", ChangeRecordViewSet, basename="inventory-changes")
urlpatterns = router.urls
