from django.db.models import QuerySet

from catalog.models import Product


def product_list_public() -> QuerySet[Product]:
    """The menu: what anyone, signed in or not, may see."""
    return Product.objects.filter(is_active=True)
