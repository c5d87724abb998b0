"""API tokens: shown once, stored as a SHA-256 digest, looked up by a public prefix."""

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from portal.models import ApiToken, AuditEvent, Membership
from portal.permissions import Permission, require
from portal.services.audit import Actor, audit_record

TOKEN_PREFIX = "sfk"  # noqa: S105  (a public marker, not a secret)
# last_used_at is written at most this often per token, so reads stay reads.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic
def api_token_create(
    *,
    by: Membership,
    name: str,
    scope: str,
    expires_at: datetime | None,
    actor: Actor,
) -> tuple[ApiToken, str]:
    """Create a token; returns it with the plain secret, which is never stored or shown again."""
    require(by, Permission.MANAGE_TOKENS)
    if scope not in ApiToken.Scope.values:
        raise ValidationError({"scope": f"Unknown scope {scope!r}."})
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "The expiry must be in the future."})
    prefix = secrets.token_hex(4)
    plain = f"{TOKEN_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken.objects.create(
        organization=by.organization,
        created_by=by.user,
        name=name.strip()[:80] or "API token",
        prefix=prefix,
        digest=_digest(plain),
        scope=scope,
        expires_at=expires_at,
    )
    audit_record(
        action=AuditEvent.Action.TOKEN_CREATED,
        actor=actor,
        organization=by.organization,
        target=f"{token.name} ({prefix})",
        detail={"scope": scope, "expires_at": expires_at.isoformat() if expires_at else None},
    )
    return token, plain


@transaction.atomic
def api_token_revoke(*, by: Membership, token: ApiToken, actor: Actor) -> ApiToken:
    if token.organization_id != by.organization_id:
        raise PermissionDenied("Not this organization's token.")
    require(by, Permission.MANAGE_TOKENS)
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(
            action=AuditEvent.Action.TOKEN_REVOKED,
            actor=actor,
            organization=by.organization,
            target=f"{token.name} ({token.prefix})",
        )
    return token


def api_token_authenticate(plain: str) -> tuple[ApiToken, Membership] | None:
    """The live token `plain` names and the membership it acts through, or None. A token acts
    as its creator within its organization: it dies with the creator's membership."""
    parts = plain.split("_", 2)  # the secret itself may contain "_"
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        return None
    token = (
        ApiToken.objects.select_related("organization", "created_by")
        .filter(prefix=parts[1], revoked_at=None)
        .first()
    )
    if token is None or not hmac.compare_digest(token.digest, _digest(plain)):
        return None
    now = timezone.now()
    if token.expires_at is not None and token.expires_at <= now:
        return None
    membership = (
        Membership.objects.select_related("organization", "user")
        .filter(user=token.created_by, organization=token.organization)
        .first()
    )
    if membership is None or not token.created_by.is_active:
        return None
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token, membership
