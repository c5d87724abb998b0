"""The Celery app: settings come from Django's, under the CELERY_ prefix."""

import functools
import os

import kombu.exceptions
import redis.exceptions
from celery import Celery, Signature, signals
from django import db

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("storefront")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@functools.cache
def _tasks_loaded() -> None:
    app.loader.import_default_modules()  # every app's tasks module, once Django is ready


def task(name: str) -> Signature:
    """The task `name` (its dotted path), for a service that queues work: an app's tasks module
    imports its services, so services name tasks rather than import them (no import circle).
    The tasks modules are loaded first, so this behaves as the task itself would (an eager app
    runs it in place, publishing options apply)."""
    _tasks_loaded()
    return app.signature(name)


# A platform service that is slow or away, as opposed to work that is wrong: callers wait and
# try again (telling whoever waits that it is delayed), never give up on the work for it.
# Publishing a task raises kombu's OperationalError once its bounded retries are spent
# (CELERY_TASK_PUBLISH_RETRY_POLICY); Redis clients (cache, channel layer) raise redis-py's.
QUEUE_ERRORS = (kombu.exceptions.OperationalError,)
DEPENDENCY_ERRORS = (
    *QUEUE_ERRORS,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    db.OperationalError,
    db.InterfaceError,
)


def dependency_down(exc: BaseException) -> str:
    """Which platform service `exc` says is slow or away, in words for a customer."""
    if isinstance(exc, QUEUE_ERRORS):
        return "the task queue"
    if isinstance(exc, db.OperationalError | db.InterfaceError):
        return "the database"
    return "the platform's Redis"


@signals.task_prerun.connect
def _forget_content_types(**kwargs):
    """Under DEBUG (development and the live test stack, whose database is flushed and refilled
    while the worker runs) content type ids may change under a long-lived worker."""
    from django.conf import settings

    if settings.DEBUG:
        from django.contrib.contenttypes.models import ContentType

        ContentType.objects.clear_cache()
