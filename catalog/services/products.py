from django.db import transaction

from catalog.models import Product


@transaction.atomic
def product_upsert(*, slug: str, name: str, kind: str, summary: str, position: int = 0) -> Product:
    product, _ = Product.objects.update_or_create(
        slug=slug,
        defaults={"name": name, "kind": kind, "summary": summary, "position": position},
    )
    return product
