"""Orders through the API: place (quote included in the answer), list, follow (the same
snapshot and events the order page shows), terminate."""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response

from catalog.models import Order, Product
from catalog.selectors_orders import order_list, order_snapshot
from catalog.services.orders import order_place, order_terminate
from fabric.models import Allocation
from portal.api.permissions import OrganizationPermission
from portal.permissions import Permission
from portal.services.audit import Actor


class OrderInputSerializer(serializers.Serializer):
    product = serializers.SlugField()
    gpu_model = serializers.CharField(max_length=64)
    nodes = serializers.IntegerField(min_value=1, max_value=64, default=1)
    topology = serializers.ChoiceField(choices=Allocation.Topology.choices, default="any")


class OrderOutputSerializer(serializers.ModelSerializer):
    product = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Order
        fields = [
            "id", "product", "spec", "state", "message", "hourly_quote", "ready_at", "ended_at",
            "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class OrderViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """The current organization's orders."""

    serializer_class = OrderOutputSerializer
    permission_classes = [OrganizationPermission]
    permission_read = Permission.VIEW
    permission_write = Permission.ORDER
    lookup_value_regex = r"\d+"

    def get_queryset(self):
        return order_list(membership=self.request.membership)

    @extend_schema(responses=dict)
    def retrieve(self, request, pk=None):
        """The order's state, steps with progress and times, servers and events."""
        return Response(order_snapshot(self.get_object()))

    @extend_schema(request=OrderInputSerializer, responses={201: dict})
    def create(self, request):
        data = OrderInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        product = get_object_or_404(Product, slug=values.pop("product"), is_active=True)
        try:
            order = order_place(
                membership=request.membership, product=product, spec=values,
                actor=Actor.from_request(request),
            )  # fmt: skip
        except DjangoPermissionDenied as denied:
            raise PermissionDenied(str(denied)) from denied
        except DjangoValidationError as error:
            detail = (
                error.message_dict if hasattr(error, "error_dict") else {"detail": error.messages}
            )
            raise ValidationError(detail) from error
        except LookupError as error:
            raise ValidationError({"product": str(error)}) from error
        return Response(order_snapshot(order), status=status.HTTP_201_CREATED)

    @extend_schema(responses=dict)
    @action(detail=True, methods=["get"])
    def events(self, request, pk=None):
        return Response(order_snapshot(self.get_object())["events"])

    @extend_schema(request=None, responses=dict)
    @action(detail=True, methods=["post"])
    def terminate(self, request, pk=None):
        order = order_terminate(order=self.get_object(), actor=Actor.from_request(request))
        return Response(order_snapshot(order))
