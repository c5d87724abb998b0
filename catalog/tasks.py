from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from billing.gateway import PaymentUnavailable
from catalog.metering import meter_usage
from catalog.notebooks.hub import HubUnavailable
from catalog.offerings.base import StepTransient
from catalog.services import orders
from fabric.power.base import PowerTransient

TRANSIENT = (StepTransient, PowerTransient, PaymentUnavailable, HubUnavailable, OperationalError)


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def meter() -> int:
    return meter_usage()


@shared_task(bind=True, acks_late=True, max_retries=None)
def order_advance(self, order_id: int) -> str:
    """One step of an order; the step enqueues the next. A transient failure is retried with
    backoff; past ORDER_STEP_RETRIES it fails the order (which then compensates)."""
    try:
        return orders.order_advance_run(order_id=order_id)
    except TRANSIENT as exc:
        if self.request.retries >= settings.ORDER_STEP_RETRIES:
            orders.order_fail(
                order_id=order_id, message=f"{exc} (gave up after {self.request.retries} retries)"
            )
            return "failed"
        countdown = min(settings.ORDER_RETRY_BASE_SECONDS * 2**self.request.retries, 60)
        raise self.retry(exc=exc, countdown=countdown) from exc


@shared_task(acks_late=True)
def orders_resume() -> int:
    return orders.orders_resume(stalled_seconds=settings.ORDER_STALL_SECONDS)


@shared_task(acks_late=True)
def notebooks_cull() -> int:
    from catalog.services.notebooks import notebooks_cull as cull

    return cull()


@shared_task(acks_late=True, autoretry_for=TRANSIENT, retry_backoff=True, max_retries=3)
def notebook_restart(order_id: int) -> bool:
    from catalog.services.notebooks import notebook_restart_run

    return notebook_restart_run(order_id=order_id)


@shared_task(acks_late=True)
def gateway_usage_flush() -> int:
    from catalog.gateway.usage import usage_flush

    return usage_flush()


@shared_task(acks_late=True)
def gateway_allowances() -> int:
    from catalog.gateway.limits import allowance_refresh
    from catalog.models import InferenceKey

    organizations = set(
        InferenceKey.objects.filter(revoked_at=None).values_list("organization_id", flat=True)
    )
    for organization_id in organizations:
        allowance_refresh(organization_id=organization_id)
    return len(organizations)
