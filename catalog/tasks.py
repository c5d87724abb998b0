from celery import shared_task
from django.db import OperationalError

from catalog.metering import meter_usage


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def meter() -> int:
    return meter_usage()
