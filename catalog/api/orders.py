"""Orders through the API: place (quote included in the answer), list, follow (the same
snapshot and events the order page shows), terminate."""

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from catalog.errors import NoOffering
from catalog.models import Order, Product
from catalog.selectors.orders import order_list, order_snapshot
from catalog.selectors.storefront import order_ssh_keys, product_list_public, purchase_check
from catalog.services.orders import order_place, order_terminate
from catalog.services.ray import ray_worker_add, ray_worker_remove
from fabric.choices import AllocationTopology
from portal.api.exceptions import api_answers
from portal.api.permissions import OrganizationPermission
from portal.permissions import Permission
from portal.services.audit import Actor

# A product no offering fulfils (yet): the customer is told so about `product`.
api_answers(NoOffering, lambda error: ValidationError({"product": str(error)}))


class OrderInputSerializer(serializers.Serializer):
    product = serializers.SlugField()
    gpu_model = serializers.CharField(
        max_length=64, required=False, help_text="bare metal and Ray clusters"
    )
    profile = serializers.CharField(
        max_length=32, required=False, help_text="notebooks: a profile, e.g. h100-1g or a100"
    )
    nodes = serializers.IntegerField(min_value=1, max_value=64, default=1)
    topology = serializers.ChoiceField(choices=AllocationTopology.choices, default="any")
    site = serializers.CharField(
        max_length=64, required=False, allow_blank=True, help_text="bare metal: empty for any"
    )
    ssh_keys = serializers.ListField(
        child=serializers.CharField(max_length=100),
        required=False,
        help_text="bare metal: fingerprints (SHA256:...) of your SSH keys; omitted: all of them",
    )


class WorkersInputSerializer(serializers.Serializer):
    change = serializers.ChoiceField(choices=["add", "remove"])


class OrderOutputSerializer(serializers.ModelSerializer):
    product = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Order
        fields = [
            "id",
            "product",
            "spec",
            "state",
            "message",
            "hourly_quote",
            "ready_at",
            "ended_at",
            "created_at",
        ]
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
        product = product_list_public().filter(slug=values.pop("product")).first()
        if product is None:
            raise ValidationError({"product": ["No such product on sale."]})
        if not values.get("site"):
            values.pop("site", None)
        if product.kind in (Product.Kind.BARE_METAL, Product.Kind.RAY):
            # Who may not buy hears that first (403); then a customer without a key (400).
            purchase_check(user=request.user, membership=request.membership)
            values["ssh_keys"] = order_ssh_keys(user=request.user, chosen=values.get("ssh_keys"))
        else:
            values.pop("ssh_keys", None)
        order = order_place(
            membership=request.membership,
            product=product,
            spec=values,
            actor=Actor.from_request(request),
        )
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

    @extend_schema(request=WorkersInputSerializer, responses={202: dict})
    @action(detail=True, methods=["post"])
    def workers(self, request, pk=None):
        """A running Ray cluster: `add` one more worker (it boots and joins; follow the order)
        or `remove` the last one."""
        data = WorkersInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        order = self.get_object()
        change = ray_worker_add if data.validated_data["change"] == "add" else ray_worker_remove
        change(order=order, actor=Actor.from_request(request))
        order.refresh_from_db()
        return Response(order_snapshot(order), status=status.HTTP_202_ACCEPTED)
