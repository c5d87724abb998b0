"""Capacity for tenants, sold through the catalog: request (once the purchase gate passes),
watch, extend, grow, shrink and release allocations; book reservations at a quoted price; read
quotas; and, for anyone, what can start now. Fabric decides; this layer gates and prices."""

from datetime import timedelta

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog import pricing
from catalog.metering import Billing, allocation_billing
from catalog.selectors.storefront import purchase_check, reservation_quote
from fabric.api.serializers import AllocationSerializer, QuotaSerializer, ReservationSerializer
from fabric.choices import AllocationShape, AllocationTopology
from fabric.selectors.capacity import allocation_list, availability, quota_list, reservation_list
from fabric.services import allocations
from fabric.services.reservations import NoCapacity, reservation_book, reservation_cancel
from portal.api.permissions import OrganizationPermission
from portal.permissions import Permission
from portal.services.audit import Actor


class AllocationInputSerializer(serializers.Serializer):
    shape = serializers.ChoiceField(choices=AllocationShape.choices)
    gpu_model = serializers.CharField(max_length=64)
    count = serializers.IntegerField(min_value=1, max_value=4096)
    slice_profile = serializers.ChoiceField(choices=["", "1g", "2g", "3g", "4g", "7g"], default="")
    topology = serializers.ChoiceField(choices=AllocationTopology.choices, default="any")
    topology_required = serializers.BooleanField(default=True)
    lease_hours = serializers.FloatField(min_value=0.05, max_value=24 * 366, required=False)


class BilledListSerializer(serializers.ListSerializer):
    """Loads the billing terms of a whole page of allocations at once."""

    def to_representation(self, data):
        items = list(data.all() if hasattr(data, "all") else data)
        self.context.setdefault("billing", {}).update(allocation_billing(allocations=items))
        return super().to_representation(items)


class AllocationOutputSerializer(AllocationSerializer):
    """An allocation and what it costs: `billed` (whether it is charged at all),
    `hourly_price` (for all it holds), `billed_since` (when charging starts or started) and
    `billing` (the rule, in words). A capacity hold without an order is billed from booking."""

    billed = serializers.SerializerMethodField()
    hourly_price = serializers.SerializerMethodField()
    billed_since = serializers.SerializerMethodField()
    billing = serializers.SerializerMethodField()

    class Meta(AllocationSerializer.Meta):
        list_serializer_class = BilledListSerializer
        fields = [
            *AllocationSerializer.Meta.fields,
            "billed",
            "hourly_price",
            "billed_since",
            "billing",
        ]
        read_only_fields = fields

    def _terms(self, allocation) -> Billing:
        known = self.context.setdefault("billing", {})
        if allocation.pk not in known:
            known.update(allocation_billing(allocations=[allocation]))
        return known[allocation.pk]

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_billed(self, allocation) -> bool:
        return self._terms(allocation).billed

    @extend_schema_field(serializers.DecimalField(max_digits=12, decimal_places=2))
    def get_hourly_price(self, allocation) -> str:
        return str(self._terms(allocation).hourly_price)

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_billed_since(self, allocation):
        since = self._terms(allocation).since
        return None if since is None else serializers.DateTimeField().to_representation(since)

    @extend_schema_field(OpenApiTypes.STR)
    def get_billing(self, allocation) -> str:
        return self._terms(allocation).note


class ExtendInputSerializer(serializers.Serializer):
    ends_at = serializers.DateTimeField(allow_null=True)


class NodesInputSerializer(serializers.Serializer):
    nodes = serializers.IntegerField(min_value=1, max_value=1024)


class QuotaOutputSerializer(QuotaSerializer):
    pass  # fabric's quota, under the name the API schema has always given it


class AvailabilityOutputSerializer(serializers.Serializer):
    gpu_model = serializers.CharField()
    shape = serializers.CharField()
    available_now = serializers.IntegerField()
    next_available_at = serializers.DateTimeField(allow_null=True)


class AllocationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Capacity held or queued for the current organization."""

    serializer_class = AllocationOutputSerializer
    permission_classes = [OrganizationPermission]
    permission_read = Permission.VIEW
    permission_write = Permission.ORDER
    lookup_value_regex = r"\d+"

    def get_queryset(self):
        return allocation_list(organization=self.request.membership.organization)

    def _actor(self):
        return Actor.from_request(self.request)

    @extend_schema(request=AllocationInputSerializer, responses={201: AllocationOutputSerializer})
    def create(self, request):
        data = AllocationInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        purchase_check(user=request.user, membership=request.membership)
        values = dict(data.validated_data)
        hours = values.pop("lease_hours", None)
        lease = None if hours is None else timedelta(hours=hours)
        allocation = allocations.allocation_request(
            organization=request.membership.organization,
            actor=self._actor(),
            lease=lease,
            **values,
        )
        return Response(AllocationOutputSerializer(allocation).data, status=status.HTTP_201_CREATED)

    def _act(self, service, serializer_class=None, **extra):
        allocation = self.get_object()
        values = {}
        if serializer_class is not None:
            data = serializer_class(data=self.request.data)
            data.is_valid(raise_exception=True)
            values = data.validated_data
        result = service(allocation=allocation, actor=self._actor(), **values, **extra)
        return Response(AllocationOutputSerializer(result).data)

    @extend_schema(request=ExtendInputSerializer, responses=AllocationOutputSerializer)
    @action(detail=True, methods=["post"])
    def extend(self, request, pk=None):
        return self._act(allocations.allocation_extend, ExtendInputSerializer)

    @extend_schema(request=NodesInputSerializer, responses=AllocationOutputSerializer)
    @action(detail=True, methods=["post"])
    def grow(self, request, pk=None):
        return self._act(allocations.allocation_grow, NodesInputSerializer)

    @extend_schema(request=NodesInputSerializer, responses=AllocationOutputSerializer)
    @action(detail=True, methods=["post"])
    def shrink(self, request, pk=None):
        return self._act(allocations.allocation_shrink, NodesInputSerializer)

    @extend_schema(request=None, responses=AllocationOutputSerializer)
    @action(detail=True, methods=["post"])
    def release(self, request, pk=None):
        return self._act(allocations.allocation_release, reason="released by the tenant")


class QuotaViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The current organization's quotas."""

    serializer_class = QuotaOutputSerializer
    permission_classes = [OrganizationPermission]
    permission_read = Permission.VIEW
    permission_write = Permission.MANAGE_MEMBERS
    pagination_class = None

    def get_queryset(self):
        return quota_list(organization=self.request.membership.organization)


class AvailabilityView(APIView):
    """Per GPU model and shape: how many can start now, and when the next could."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(responses=AvailabilityOutputSerializer(many=True))
    def get(self, request):
        return Response(AvailabilityOutputSerializer(availability(), many=True).data)


class ReservationInputSerializer(serializers.Serializer):
    gpu_model = serializers.CharField(max_length=64)
    count = serializers.IntegerField(min_value=1, max_value=4096)
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    weekly_occurrences = serializers.IntegerField(min_value=1, max_value=52, default=1)


class ReservationOutputSerializer(ReservationSerializer):
    price = serializers.SerializerMethodField()

    class Meta(ReservationSerializer.Meta):
        fields = [
            "id",
            "gpu_model",
            "count",
            "starts_at",
            "ends_at",
            "weekly_occurrences",
            "state",
            "gpu_hours",
            "price",
            "created_at",
        ]
        read_only_fields = fields

    def get_price(self, reservation) -> str:
        return str(pricing.quote(reservation.gpu_model, reservation.gpu_hours))


class ReservationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Capacity held for the organization in a window, once or weekly: booked at a quoted price,
    or answered with the nearest windows that fit."""

    serializer_class = ReservationOutputSerializer
    permission_classes = [OrganizationPermission]
    permission_read = Permission.VIEW
    permission_write = Permission.ORDER
    lookup_value_regex = r"\d+"

    def get_queryset(self):
        return reservation_list(organization=self.request.membership.organization)

    @extend_schema(request=ReservationInputSerializer, responses={201: ReservationOutputSerializer})
    def create(self, request):
        data = ReservationInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        purchase_check(user=request.user, membership=request.membership)
        values = data.validated_data
        try:
            reservation = reservation_book(
                organization=request.membership.organization,
                actor=Actor.from_request(request),
                **values,
            )
        except NoCapacity as full:
            price = str(reservation_quote(**values))
            return Response(
                {
                    "detail": full.messages[0],
                    "suggestions": [
                        {"starts_at": start, "ends_at": end, "price": price}
                        for start, end in full.suggestions
                    ],
                },
                status=status.HTTP_409_CONFLICT,
            )
        return Response(
            ReservationOutputSerializer(reservation).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(request=None, responses=ReservationOutputSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        reservation = reservation_cancel(
            reservation=self.get_object(), actor=Actor.from_request(request)
        )
        return Response(ReservationOutputSerializer(reservation).data)
