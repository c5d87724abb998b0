from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from fabric.errors import PowerTransient
from fabric.models import Node
from fabric.services import allocations, cleaning, queue
from portal.services.audit import Actor


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def queue_process(gpu_model: str) -> dict:
    return queue.queue_process(gpu_model=gpu_model)


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def lease_sweep() -> dict:
    return allocations.lease_sweep()


@shared_task(bind=True, acks_late=True, max_retries=5)
def node_clean(self, node_id: int) -> str:
    """Boot a node given back into its cleaning job and time it out; a BMC that may answer
    later is retried (backing off), one that never does sends the node to maintenance."""
    node, actor = Node(pk=node_id), Actor.system()
    try:
        event = cleaning.node_clean_start(node=node, actor=actor)
    except (OperationalError, PowerTransient) as exc:
        if self.request.retries >= self.max_retries:
            cleaning.node_clean_finish(
                node=node, ok=False, detail=f"cannot boot the cleaning job: {exc}", actor=actor
            )
            return "maintenance"
        raise self.retry(exc=exc, countdown=min(2**self.request.retries * 5, 300)) from exc
    if event is None:
        return "not cleaning"
    node_clean_expire.apply_async(
        (node_id, event.pk), countdown=settings.NODE_CLEANING_TIMEOUT_SECONDS
    )
    return "started"


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def node_clean_expire(node_id: int, event_id: int) -> str:
    done = cleaning.node_clean_expire(
        node=Node(pk=node_id), event_id=event_id, actor=Actor.system()
    )
    return "maintenance" if done else "finished before"
