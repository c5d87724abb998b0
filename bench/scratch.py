"""What the benchmarks share: Django set up from the repository, a scratch database of their own
(so the developer's data is untouched), and the environment for the storefront's own
processes (web, worker) to use that database and a queue of their own."""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent


def django_setup() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()


@contextlib.contextmanager
def scratch_database(name: str) -> Iterator[None]:
    from django.db import connection

    old_name = connection.settings_dict["NAME"]
    connection.settings_dict["TEST"]["NAME"] = name
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        yield
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def process_environment(**extra: str) -> dict:
    """For a web server and worker on the scratch database, with their own Celery queue (this
    process sends to it too)."""
    from django.conf import settings
    from django.db import connection

    from portal.celery import app as celery_app

    queue = f"bench-{uuid.uuid4().hex[:6]}"
    celery_app.conf.task_default_queue = queue
    database = urlsplit(settings.DATABASE_URL)._replace(path="/" + connection.settings_dict["NAME"])
    return {
        **os.environ, "DATABASE_URL": urlunsplit(database), "REDIS_URL": settings.REDIS_URL,
        "STOREFRONT_QUEUE_PREFIX": queue, "DJANGO_DEBUG": "1", **extra,
    }  # fmt: skip
