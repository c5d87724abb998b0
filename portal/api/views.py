from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from portal import selectors
from portal.api.permissions import OrganizationPermission
from portal.api.serializers import (
    AuditEventOutputSerializer,
    JobInputSerializer,
    JobOutputSerializer,
)
from portal.permissions import Permission
from portal.services.jobs import job_start


class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Background jobs of the current organization; progress also streams on ws/jobs/<id>/."""

    serializer_class = JobOutputSerializer
    lookup_value_regex = r"\d+"
    permission_classes = [OrganizationPermission]
    permission_read = Permission.VIEW
    permission_write = Permission.ORDER

    def get_queryset(self):
        return selectors.job_list(membership=self.request.membership)

    def get_object(self):
        return selectors.job_get(membership=self.request.membership, job_id=int(self.kwargs["pk"]))

    @extend_schema(request=JobInputSerializer, responses={201: JobOutputSerializer})
    def create(self, request):
        data = JobInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = job_start(
            user=request.user,
            organization=request.membership.organization,
            kind=data.validated_data["kind"],
        )
        return Response(JobOutputSerializer(job).data, status=status.HTTP_201_CREATED)


class AuditEventViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The current organization's audit log (owners only)."""

    serializer_class = AuditEventOutputSerializer
    permission_classes = [OrganizationPermission]
    permission_read = Permission.READ_AUDIT
    permission_write = Permission.READ_AUDIT

    def get_queryset(self):
        return selectors.audit_list(membership=self.request.membership)
