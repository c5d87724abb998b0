from celery import shared_task
from django.db import OperationalError

from billing import payments
from billing.services.webhooks import webhook_process as process


@shared_task(
    acks_late=True,
    autoretry_for=(OperationalError, payments.PaymentUnavailable),
    retry_backoff=True,
    max_retries=8,
)
def webhook_process(event_id: int) -> str:
    return process(event_id=event_id).type


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def invoices_run() -> dict:
    from billing.services.invoicing import invoices_due

    return invoices_due()


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def budgets_run() -> int:
    from billing.services.budgets import budgets_run as run

    return run()
