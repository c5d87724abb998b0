"""The inventory API: every kind with filtering, ordering, pagination and CRUD for operators;
tenants read what is allocated to them. Writes go through the change-logging services."""

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema
from rest_framework import filters, permissions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from fabric import models as m
from fabric.api import serializers as s
from fabric.selectors.inventory import inventory_for
from fabric.services.changes import inventory_delete, inventory_save
from fabric.services.ipam import number_allocate
from fabric.services.power import bmc_set, bmc_verify
from portal.services.audit import Actor


class OperatorWritesTenantsRead(permissions.BasePermission):
    """Operators (staff) may do anything; other signed-in callers may only read."""

    def has_permission(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return False
        return request.method in permissions.SAFE_METHODS or request.user.is_staff


class InventoryViewSet(viewsets.ModelViewSet):
    permission_classes = [OperatorWritesTenantsRead]
    filter_backends = [DjangoFilterBackend, filters.SearchFilter, filters.OrderingFilter]
    ordering = ["pk"]
    related: tuple[str, ...] = ()
    prefetch: tuple[str, ...] = ()

    def get_queryset(self):
        queryset = self.queryset.select_related(*self.related).prefetch_related(*self.prefetch)
        return inventory_for(
            queryset, user=self.request.user, membership=getattr(self.request, "membership", None)
        )

    def _save(self, serializer: serializers.ModelSerializer, instance=None):
        obj = instance or serializer.Meta.model()
        for field, value in serializer.validated_data.items():
            setattr(obj, field, value)
        serializer.instance = inventory_save(obj=obj, actor=Actor.from_request(self.request))

    def perform_create(self, serializer):
        self._save(serializer)

    def perform_update(self, serializer):
        self._save(serializer, serializer.instance)

    def perform_destroy(self, instance):
        inventory_delete(obj=instance, actor=Actor.from_request(self.request))


def _viewset(model, serializer, *, fields=(), search=(), ordering=(), related=(), prefetch=()):
    return type(
        f"{model.__name__}ViewSet",
        (InventoryViewSet,),
        {
            "queryset": model.objects.all(),
            "serializer_class": serializer,
            "filterset_fields": list(fields),
            "search_fields": list(search),
            "ordering_fields": ["pk", *ordering],
            "related": tuple(related),
            "prefetch": tuple(prefetch),
            "__doc__": f"{model._meta.verbose_name_plural.capitalize()} in the inventory.",
        },
    )


class NodeViewSet(
    _viewset(
        m.Node,
        s.NodeSerializer,
        fields=("site__name", "state", "gpu_model", "node_type", "rack", "organization"),
        search=("name", "serial", "=interfaces__mac", "=gpus__uuid"),
        ordering=("name", "serial", "state", "site__name"),
        related=("site", "rack"),
    )
):
    def get_serializer_class(self):
        return s.NodeSerializer if self.request.user.is_staff else s.TenantNodeSerializer

    @extend_schema(request=None, responses=s.BmcVerificationSerializer)
    @action(
        detail=True,
        methods=["post"],
        url_path="bmc/verify",
        permission_classes=[permissions.IsAdminUser],
    )
    def verify_bmc(self, request, pk=None):
        """Read the node's power state and system serial from its BMC, compare the serial with
        the inventory, and record a mismatch as drift (operators)."""
        result = bmc_verify(node=self.get_object(), actor=Actor.from_request(request))
        return Response(s.BmcVerificationSerializer(result).data)


class BmcViewSet(
    _viewset(
        m.Bmc,
        s.BmcSerializer,
        fields=("node__name", "driver", "node__site__name"),
        search=("node__name", "url"),
        ordering=("node__name",),
        related=("node",),
    )
):
    """Nodes' BMCs (operators). Writes go through `bmc_set`, which encrypts the password or
    checks the reference."""

    permission_classes = [permissions.IsAdminUser]

    def _save(self, serializer, instance=None):
        data = serializer.validated_data
        current = instance or m.Bmc()
        serializer.instance = bmc_set(
            node=data.get("node") or current.node,
            url=data.get("url", current.url),
            system_id=data.get("system_id", current.system_id),
            username=data.get("username", current.username),
            password=data.get("password"),
            password_ref=data.get("password_ref", ""),
            verify_tls=data.get("verify_tls", current.verify_tls if instance else True),
            driver=data.get("driver", current.driver),
            actor=Actor.from_request(self.request),
        )


class NumberAllocationViewSet(
    _viewset(
        m.NumberAllocation,
        s.NumberAllocationSerializer,
        fields=("site", "kind", "pool", "organization"),
        ordering=("value",),
    )
):
    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = number_allocate(
            pool=data["pool"],
            value=data.get("value"),
            organization=data.get("organization"),
            purpose=data.get("purpose", ""),
            actor=Actor.from_request(self.request),
        )


VIEWSETS = {
    "sites": _viewset(
        m.Site,
        s.SiteSerializer,
        fields=("region",),
        search=("name",),
        ordering=("name",),
    ),
    "pods": _viewset(m.Pod, s.PodSerializer, fields=("site__name",), related=("site",)),
    "racks": _viewset(
        m.Rack,
        s.RackSerializer,
        fields=("site__name", "pod"),
        search=("name",),
        ordering=("name",),
        related=("site",),
    ),
    "nodes": NodeViewSet,
    "bmcs": BmcViewSet,
    "gpus": _viewset(
        m.GPU,
        s.GPUSerializer,
        fields=("node__name", "model", "health", "node__site__name"),
        search=("=uuid", "=serial"),
        ordering=("index",),
        related=("node",),
    ),
    "interfaces": _viewset(
        m.NetworkInterface,
        s.NetworkInterfaceSerializer,
        fields=("node__name", "kind", "rail", "speed_gbps"),
        search=("=mac", "=ib_guid", "name"),
        ordering=("name",),
        related=("node",),
    ),
    "switches": _viewset(
        m.Switch,
        s.SwitchSerializer,
        fields=("site__name", "role", "platform", "rail", "pod"),
        search=("name", "=serial"),
        ordering=("name",),
        related=("site",),
    ),
    "switch-ports": _viewset(
        m.SwitchPort,
        s.SwitchPortSerializer,
        fields=("switch__name",),
        search=("name",),
        related=("switch",),
    ),
    "cables": _viewset(
        m.Cable,
        s.CableSerializer,
        fields=("kind",),
        search=("label",),
        ordering=("label",),
        prefetch=("ends",),
    ),
    "prefixes": _viewset(
        m.Prefix,
        s.PrefixSerializer,
        fields=("site", "vrf", "role", "is_pool"),
        ordering=("vrf",),
    ),
    "ip-addresses": _viewset(
        m.IPAddress,
        s.IPAddressSerializer,
        fields=("prefix", "organization", "interface"),
    ),
    "number-pools": _viewset(
        m.NumberPool,
        s.NumberPoolSerializer,
        fields=("site", "kind"),
        search=("name",),
    ),
    "number-allocations": NumberAllocationViewSet,
    "firewall-policies": _viewset(
        m.FirewallPolicy,
        s.FirewallPolicySerializer,
        fields=("organization",),
        search=("name",),
    ),
    "firewall-rules": _viewset(
        m.FirewallRule,
        s.FirewallRuleSerializer,
        fields=("policy", "action", "direction"),
        ordering=("position",),
    ),
}


class ChangeRecordViewSet(viewsets.ReadOnlyModelViewSet):
    """The inventory change log (operators)."""

    queryset = m.ChangeRecord.objects.select_related("content_type", "actor")
    serializer_class = s.ChangeRecordSerializer
    permission_classes = [permissions.IsAdminUser]
    filter_backends = [DjangoFilterBackend, filters.OrderingFilter]
    filterset_fields = ["content_type__model", "object_id", "action", "via"]
    ordering = ["-created_at", "-pk"]
