from django.contrib import admin

from catalog.models import Product


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "is_active", "position"]
    list_filter = ["kind", "is_active"]
    prepopulated_fields = {"slug": ["name"]}
