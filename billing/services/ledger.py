"""The usage ledger: the one way other apps record what a tenant used. Append-only; each event
is written once for its idempotency key, however often or from however many workers it comes."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import connection, transaction

from billing.models import UsageEvent
from portal.models import Organization


def usage_record(
    *,
    organization: Organization,
    idempotency_key: str,
    meter: str,
    item: str,
    quantity: Decimal,
    started_at: datetime,
    ended_at: datetime,
    source: str,
) -> tuple[UsageEvent, bool]:
    """Record usage once: (the stored event, whether this call wrote it). A replay returns the
    event first written, whatever quantity it carries (a correction is a new event)."""
    if meter not in UsageEvent.Meter.values:
        raise ValidationError({"meter": f"Unknown meter {meter!r}."})
    if quantity < 0:
        raise ValidationError({"quantity": "Usage is never negative; record a correction."})
    if ended_at < started_at:
        raise ValidationError({"ended_at": "Usage must end after it starts."})
    # INSERT ... ON CONFLICT DO NOTHING: of concurrent writers of one key exactly one wins, and
    # RETURNING tells it so.
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO billing_usageevent (organization_id, idempotency_key, meter, item,
                quantity, started_at, ended_at, source, recorded_at)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now())
            ON CONFLICT (idempotency_key) DO NOTHING
            RETURNING id
            """,
            [
                organization.pk,
                idempotency_key,
                meter,
                item[:120],
                quantity,
                started_at,
                ended_at,
                source[:120],
            ],
        )
        created = cursor.fetchone() is not None
    return UsageEvent.objects.get(idempotency_key=idempotency_key), created


@transaction.atomic
def usage_correct(*, event: UsageEvent, quantity: Decimal, reason: str) -> UsageEvent:
    """A compensating entry: `quantity` (negative to take usage back) against `event`."""
    key = f"correction:{event.idempotency_key}:{reason}"[:200]
    correction, _ = UsageEvent.objects.get_or_create(
        idempotency_key=key,
        defaults={
            "organization_id": event.organization_id,
            "meter": event.meter,
            "item": event.item,
            "quantity": quantity,
            "started_at": event.started_at,
            "ended_at": event.ended_at,
            "source": f"correction of {event.pk}: {reason}"[:120],
            "corrects": event,
        },
    )
    return correction
