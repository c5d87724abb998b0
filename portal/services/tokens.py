"""API tokens: shown once, stored as a digest, looked up by a public prefix (`portal.secrets`)."""

from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from portal.models import ApiToken, AuditEvent, Membership
from portal.permissions import Permission, require
from portal.secrets import secret_generate, secret_lookup, secret_revoke, secret_verify
from portal.services.audit import Actor, audit_record

TOKEN_PREFIX = "sfk"  # noqa: S105  (a public marker, not a secret)
# last_used_at is written at most this often per token, so reads stay reads.
LAST_USED_RESOLUTION = timedelta(minutes=1)


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
    issued = secret_generate(marker=TOKEN_PREFIX)
    prefix = issued.lookup
    token = ApiToken.objects.create(
        organization=by.organization,
        created_by=by.user,
        name=name.strip()[:80] or "API token",
        prefix=prefix,
        digest=issued.digest,
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
    return token, issued.plain


@transaction.atomic
def api_token_revoke(*, by: Membership, token: ApiToken, actor: Actor) -> ApiToken:
    if token.organization_id != by.organization_id:
        raise PermissionDenied("Not this organization's token.")
    require(by, Permission.MANAGE_TOKENS)
    if secret_revoke(token):
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
    lookup = secret_lookup(plain, marker=TOKEN_PREFIX)
    if lookup is None:
        return None
    token = (
        ApiToken.objects.select_related("organization", "created_by")
        .filter(prefix=lookup, revoked_at=None)
        .first()
    )
    if token is None or not secret_verify(plain, token.digest):
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
