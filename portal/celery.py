"""The Celery app: settings come from Django's, under the CELERY_ prefix."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("storefront")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_prerun.connect
def _forget_content_types(**kwargs):
    """Under DEBUG (development and the live test stack, whose database is flushed and refilled
    while the worker runs) content type ids may change under a long-lived worker."""
    from django.conf import settings

    if settings.DEBUG:
        from django.contrib.contenttypes.models import ContentType

        ContentType.objects.clear_cache()
