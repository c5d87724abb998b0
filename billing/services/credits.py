"""Prepaid credit, granted by operators and spent first by invoices."""

from datetime import datetime
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from billing.models import CreditGrant
from portal.models import AuditEvent, Organization
from portal.services.audit import Actor, audit_record


@transaction.atomic
def credit_grant(
    *,
    organization: Organization,
    amount: Decimal,
    expires_at: datetime | None,
    note: str,
    actor: Actor,
) -> CreditGrant:
    if actor.user is None or not actor.user.is_staff:
        raise PermissionDenied("Only operators grant credit.")
    if amount <= 0:
        raise ValidationError({"amount": "Credit must be a positive amount."})
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "The expiry must be in the future."})
    grant = CreditGrant.objects.create(
        organization=organization,
        amount=amount,
        expires_at=expires_at,
        note=note[:200],
        granted_by=actor.user,
    )
    audit_record(
        action=AuditEvent.Action.CREDIT_GRANTED,
        actor=actor,
        organization=organization,
        target=f"{amount} {grant.currency}",
        detail={"note": note, "expires_at": expires_at.isoformat() if expires_at else None},
    )
    return grant
