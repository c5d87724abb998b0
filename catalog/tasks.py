import logging
import time

from celery import shared_task
from django.conf import settings
from django.db import OperationalError, close_old_connections

from catalog.errors import StepTransient
from catalog.gateway.limits import allowance_refresh
from catalog.gateway.usage import usage_flush
from catalog.metering import meter_usage
from catalog.models import InferenceKey
from catalog.services import notebooks, orders, ray
from portal.celery import DEPENDENCY_ERRORS, QUEUE_ERRORS

# What a step's peers (a BMC, Stripe, the hub) answer when they may answer later reaches here
# as StepTransient: the offerings and services translate their peers' errors at the edge.
TRANSIENT = (StepTransient, OperationalError)
DEFECT = "The order stopped on an error on our side; the operators were told."
logger = logging.getLogger(__name__)


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def meter() -> int:
    return meter_usage()


@shared_task(acks_late=True, ignore_result=True)
def order_advance(order_id: int, failures: int = 0) -> str:
    """One step of an order; the step enqueues the next.

    A transient failure of the order's own peers (a BMC, Stripe, the hub) is retried with
    backoff; past ORDER_STEP_RETRIES (counted in `failures`) it fails the order, which then
    compensates. A platform service that is slow or away (the task queue, Redis, the database)
    never fails an order: it is marked delayed and the step is tried again until the service
    answers, then the delay is cleared. While the task queue itself cannot take the retry, this
    run waits and tries here (up to ORDER_DELAY_WAIT_SECONDS; then the resume sweep takes
    over), so the order goes on as soon as the queue is back."""
    delays, waited = 0, 0.0
    while True:
        try:
            outcome = orders.order_advance_run(order_id=order_id)
        except StepTransient as exc:  # a peer of the order's own failing for long fails it
            if failures >= settings.ORDER_STEP_RETRIES:
                orders.order_fail(
                    order_id=order_id, message=f"{exc} (gave up after {failures} retries)"
                )
                return "failed"
            countdown = min(settings.ORDER_RETRY_BASE_SECONDS * 2**failures, 60)
            failures += 1
            queue_down = False
        except DEPENDENCY_ERRORS as exc:
            orders.order_delay_note(order_id=order_id, error=exc)
            backoff = settings.ORDER_RETRY_BASE_SECONDS * 2**delays
            countdown = min(backoff, settings.ORDER_DELAY_RETRY_MAX_SECONDS)
            delays += 1
            queue_down = isinstance(exc, QUEUE_ERRORS)
        except Exception:  # a defect: the order must not hang in a working state
            logger.exception("order %s: its step failed on an unexpected error", order_id)
            orders.order_fail(order_id=order_id, message=DEFECT)
            return "failed"
        else:
            if outcome != "busy":  # a busy order's runner clears its own delay
                orders.order_delay_clear(order_id=order_id)
            return outcome
        if not queue_down:
            try:
                order_advance.apply_async((order_id,), {"failures": failures}, countdown=countdown)
                return "retrying"
            except QUEUE_ERRORS as exc:
                orders.order_delay_note(order_id=order_id, error=exc)
        if waited >= settings.ORDER_DELAY_WAIT_SECONDS:
            return "delayed"  # orders_resume sends it again once the queue is back
        time.sleep(countdown)
        waited += countdown
        close_old_connections()  # a connection the database dropped is not used again


@shared_task(acks_late=True)
def orders_resume() -> int:
    return orders.orders_resume(
        stalled_seconds=settings.ORDER_STALL_SECONDS,
        delayed_seconds=settings.ORDER_DELAY_RESUME_SECONDS,
    )


@shared_task(acks_late=True)
def notebooks_cull() -> int:
    return notebooks.notebooks_cull()


@shared_task(acks_late=True, autoretry_for=TRANSIENT, retry_backoff=True, max_retries=3)
def notebook_restart(order_id: int) -> bool:
    return notebooks.notebook_restart_run(order_id=order_id)


@shared_task(acks_late=True, autoretry_for=TRANSIENT, retry_backoff=True, max_retries=3)
def ray_workers_settle(order_id: int) -> str:
    return ray.ray_workers_settle_run(order_id=order_id)


@shared_task(acks_late=True, autoretry_for=TRANSIENT, retry_backoff=True, max_retries=3)
def ray_worker_remove(order_id: int) -> str:
    return ray.ray_worker_remove_run(order_id=order_id)


@shared_task(acks_late=True)
def gateway_usage_flush() -> int:
    return usage_flush()


@shared_task(acks_late=True)
def gateway_allowances() -> int:
    organizations = set(
        InferenceKey.objects.filter(revoked_at=None).values_list("organization_id", flat=True)
    )
    for organization_id in organizations:
        allowance_refresh(organization_id=organization_id)
    return len(organizations)
