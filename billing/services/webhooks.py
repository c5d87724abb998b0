"""Stripe's webhooks: each event is verified and stored once, then processed by a task queued on
commit; processing an event twice does nothing the second time."""

from django.db import transaction
from django.utils import timezone

from billing import payments
from billing.models import StripeCustomer, WebhookEvent
from billing.services.cards import cards_sync
from billing.services.invoicing import invoice_payment_settled
from portal.celery import task
from portal.models import Organization


def webhook_receive(*, payload: bytes, signature: str) -> tuple[WebhookEvent, bool]:
    """Verify and store an event once; (event, is_new). Processing is queued on commit."""
    event = payments.webhook_event_construct(payload=payload, signature=signature)
    with transaction.atomic():
        stored, created = WebhookEvent.objects.get_or_create(
            stripe_event_id=event["id"], defaults={"type": event["type"], "payload": event}
        )
        if created:
            transaction.on_commit(lambda: task("billing.tasks.webhook_process").delay(stored.pk))
    return stored, created


def _organization_for_customer(customer_id: str | None) -> Organization | None:
    found = StripeCustomer.objects.select_related("organization").filter(stripe_id=customer_id)
    customer = found.first()
    return customer.organization if customer else None


def webhook_process(*, event_id: int) -> WebhookEvent:
    with transaction.atomic():
        event = WebhookEvent.objects.select_for_update().get(pk=event_id)
        if event.processed_at is not None:
            return event
        data = event.payload.get("data", {}).get("object", {})
        if event.type in ("customer.updated", "customer.created"):
            organization = _organization_for_customer(data.get("id"))
            if organization is not None:
                cards_sync(organization=organization)
        elif event.type in ("payment_intent.succeeded", "payment_intent.payment_failed"):
            error = (data.get("last_payment_error") or {}).get("message", "")
            invoice_payment_settled(
                payment_intent_id=data.get("id", ""),
                succeeded=event.type == "payment_intent.succeeded",
                error=error,
            )
        event.processed_at = timezone.now()
        event.save(update_fields=["processed_at"])
    return event
