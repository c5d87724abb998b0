"""Read path for the node agent's findings. Drift is operator data about the fleet, not a
tenant's: no organization scope applies."""

from django.db.models import QuerySet

from fabric.models import Drift


def drift_list_open() -> QuerySet[Drift]:
    return (
        Drift.objects.filter(resolved_at=None)
        .select_related("node")
        .order_by("node__name", "kind", "subject")
    )
