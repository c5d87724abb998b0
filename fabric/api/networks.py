"""Tenant networks for tenants: create, attach and detach their nodes (with a dry run that
shows the plan), delete, and read the history of every push and what the switches answered."""

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from fabric.models import NetworkInterface, NetworkPush, Site, TenantNetwork
from fabric.networks.push import PushFailed
from fabric.services import networks
from portal.api.exceptions import api_answers
from portal.api.permissions import OrganizationPermission
from portal.permissions import Permission
from portal.services.audit import Actor

# A switch refused or could not be reached, and every switch was rolled back: nothing changed.
api_answers(PushFailed, lambda error: ValidationError({"detail": str(error)}))


class NetworkInputSerializer(serializers.Serializer):
    site = serializers.CharField(max_length=64)
    label = serializers.CharField(max_length=80)


class NetworkOutputSerializer(serializers.ModelSerializer):
    site = serializers.CharField(source="site.name")
    vrf = serializers.CharField(read_only=True)
    access_prefix = serializers.CharField(read_only=True)
    attached = serializers.SerializerMethodField()

    class Meta:
        model = TenantNetwork
        fields = ["id", "label", "site", "vrf", "state", "access_prefix", "attached", "created_at"]
        read_only_fields = fields

    def get_attached(self, network) -> list[str]:
        return [
            f"{a.interface.node.name}:{a.interface.name}"
            for a in network.attachments.all()
            if a.state == "attached"
        ]


class MembersInputSerializer(serializers.Serializer):
    nodes = serializers.ListField(child=serializers.CharField(max_length=64), min_length=1)
    interface = serializers.CharField(max_length=32, default="eth0")
    dry_run = serializers.BooleanField(default=False)


class PushOutputSerializer(serializers.ModelSerializer):
    switch = serializers.CharField(source="switch.name")

    class Meta:
        model = NetworkPush
        fields = [
            "id",
            "switch",
            "operation",
            "status",
            "commands",
            "output",
            "error",
            "seconds",
            "created_at",
        ]
        read_only_fields = fields


class NetworkViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """The current organization's networks."""

    serializer_class = NetworkOutputSerializer
    permission_classes = [OrganizationPermission]
    permission_read = Permission.VIEW
    permission_write = Permission.ORDER
    lookup_value_regex = r"\d+"

    def get_queryset(self):
        return (
            TenantNetwork.objects.filter(
                organization=self.request.membership.organization, state="active"
            )
            .prefetch_related("attachments__interface__node")
            .select_related("site")
        )

    def _actor(self):
        return Actor.from_request(self.request)

    @extend_schema(request=NetworkInputSerializer, responses={201: NetworkOutputSerializer})
    def create(self, request):
        data = NetworkInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        site = Site.objects.filter(name=data.validated_data["site"]).first()
        if site is None:
            raise ValidationError({"site": "No such site."})
        network = networks.network_create(
            organization=request.membership.organization,
            site=site,
            label=data.validated_data["label"],
            actor=self._actor(),
        )
        return Response(NetworkOutputSerializer(network).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        networks.network_delete(network=instance, actor=self._actor())

    def _members(self, service):
        network = self.get_object()
        data = MembersInputSerializer(data=self.request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        nics = list(
            NetworkInterface.objects.filter(
                node__name__in=values["nodes"],
                name=values["interface"],
                node__organization=network.organization,
            ).select_related("node")
        )
        if len(nics) != len(set(values["nodes"])):
            raise NotFound("One or more of those nodes are not yours.")
        pushes = service(
            network=network, interfaces=nics, actor=self._actor(), dry_run=values["dry_run"]
        )
        return Response(PushOutputSerializer(pushes, many=True).data)

    @extend_schema(request=MembersInputSerializer, responses=PushOutputSerializer(many=True))
    @action(detail=True, methods=["post"])
    def attach(self, request, pk=None):
        return self._members(networks.network_attach)

    @extend_schema(request=MembersInputSerializer, responses=PushOutputSerializer(many=True))
    @action(detail=True, methods=["post"])
    def detach(self, request, pk=None):
        return self._members(networks.network_detach)

    @extend_schema(responses=PushOutputSerializer(many=True))
    @action(detail=True, methods=["get"])
    def history(self, request, pk=None):
        pushes = self.get_object().pushes.select_related("switch").order_by("-pk")[:200]
        return Response(PushOutputSerializer(pushes, many=True).data)
