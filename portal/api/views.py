from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from portal import selectors, services
from portal.api.serializers import JobInputSerializer, JobOutputSerializer


class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Background jobs of the caller's organizations; progress also streams on ws/jobs/<id>/."""

    serializer_class = JobOutputSerializer
    lookup_value_regex = r"\d+"

    def get_queryset(self):
        return selectors.job_list_for_user(user=self.request.user)

    def get_object(self):
        return selectors.job_get_for_user(user=self.request.user, job_id=int(self.kwargs["pk"]))

    @extend_schema(request=JobInputSerializer, responses={201: JobOutputSerializer})
    def create(self, request):
        data = JobInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        organization = selectors.organization_for_user(user=request.user)
        job = services.job_start(
            user=request.user, organization=organization, kind=data.validated_data["kind"]
        )
        return Response(JobOutputSerializer(job).data, status=status.HTTP_201_CREATED)
