from rest_framework.routers import DefaultRouter

from portal.api.views import AuditEventViewSet, JobViewSet

router = DefaultRouter(trailing_slash=True)
router.register("jobs", JobViewSet, basename="job")
router.register("audit-events", AuditEventViewSet, basename="audit-event")

urlpatterns = router.urls
