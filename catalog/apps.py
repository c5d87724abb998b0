from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "catalog"

    def ready(self) -> None:
        from catalog import receivers  # noqa: F401  (stops work when spending hits its limit)
