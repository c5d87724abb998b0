from celery import shared_task
from django.db import OperationalError

from fabric.services import allocations, queue


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def queue_process(gpu_model: str) -> dict:
    return queue.queue_process(gpu_model=gpu_model)


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def lease_sweep() -> dict:
    return allocations.lease_sweep()
