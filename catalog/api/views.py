from rest_framework import permissions, viewsets

from catalog.api.serializers import ProductOutputSerializer
from catalog.selectors.storefront import product_list_public


class ProductViewSet(viewsets.ReadOnlyModelViewSet):
    """The public catalog."""

    serializer_class = ProductOutputSerializer
    permission_classes = [permissions.AllowAny]
    lookup_field = "slug"

    def get_queryset(self):
        return product_list_public()
