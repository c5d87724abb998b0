from rest_framework import serializers

from catalog.models import Product


class ProductOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Product
        fields = ["slug", "name", "kind", "summary"]
        read_only_fields = fields
