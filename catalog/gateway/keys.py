"""Inference keys: created (the secret shown once), revoked, and looked up on every request
from a short cache rather than the database. A revoked key is dropped from the cache at once."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal

from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from catalog.gateway.limits import allowance_refresh
from catalog.models import InferenceKey
from portal.models import AuditEvent, Membership
from portal.permissions import Permission, require
from portal.secrets import secret_digest, secret_generate, secret_lookup, secret_revoke
from portal.services.audit import Actor, audit_record

KEY_PREFIX = "sk-sf"
CACHE_SECONDS = 30


def _cache_key(digest: str) -> str:
    return f"gateway:key:{digest}"


@dataclass(frozen=True)
class KeyInfo:
    """What the gateway needs of a key, cached (no model instance on the hot path)."""

    id: int
    organization_id: int
    prefix: str
    allowed_models: tuple[str, ...]
    rpm: int | None
    tpm: int | None
    monthly_budget: str | None
    expires_at: float | None

    def allows(self, model: str) -> bool:
        return not self.allowed_models or model in self.allowed_models

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at


def _info(key: InferenceKey) -> KeyInfo:
    return KeyInfo(
        id=key.pk,
        organization_id=key.organization_id,
        prefix=key.prefix,
        allowed_models=tuple(key.allowed_models),
        rpm=key.rpm,
        tpm=key.tpm,
        monthly_budget=str(key.monthly_budget) if key.monthly_budget is not None else None,
        expires_at=key.expires_at.timestamp() if key.expires_at else None,
    )


@transaction.atomic
def inference_key_create(
    *,
    by: Membership,
    name: str,
    actor: Actor,
    allowed_models: list[str] | None = None,
    rpm: int | None = None,
    tpm: int | None = None,
    monthly_budget: Decimal | None = None,
    expires_at: datetime | None = None,
) -> tuple[InferenceKey, str]:
    """Create a key; returns it with the secret, which is never stored or shown again."""
    require(by, Permission.MANAGE_TOKENS)
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "The expiry must be in the future."})
    for field, value in (("rpm", rpm), ("tpm", tpm)):
        if value is not None and value < 1:
            raise ValidationError({field: "A limit is at least 1."})
    if monthly_budget is not None:
        monthly_budget = Decimal(monthly_budget).quantize(Decimal("0.01"))
    if monthly_budget is not None and monthly_budget <= 0:
        raise ValidationError({"monthly_budget": "A budget is a positive amount."})
    issued = secret_generate(marker=KEY_PREFIX, sep="-")
    key = InferenceKey.objects.create(
        organization=by.organization,
        created_by=by.user,
        name=name.strip()[:80] or "key",
        prefix=issued.lookup,
        digest=issued.digest,
        allowed_models=sorted(set(allowed_models or [])),
        rpm=rpm,
        tpm=tpm,
        monthly_budget=monthly_budget,
        expires_at=expires_at,
    )
    audit_record(
        actor=actor,
        organization=by.organization,
        action=AuditEvent.Action.INFERENCE_KEY_CREATED,
        target=f"{key.name} ({key.prefix})",
    )
    organization_id = by.organization_id
    transaction.on_commit(lambda: allowance_refresh(organization_id=organization_id))
    return key, issued.plain


@transaction.atomic
def inference_key_revoke(*, by: Membership, key: InferenceKey, actor: Actor) -> InferenceKey:
    if key.organization_id != by.organization_id:
        raise PermissionDenied("Not this organization's key.")
    require(by, Permission.MANAGE_TOKENS)
    if secret_revoke(key):
        digest = key.digest
        transaction.on_commit(lambda: cache.delete(_cache_key(digest)))
        audit_record(
            actor=actor,
            organization=by.organization,
            action=AuditEvent.Action.INFERENCE_KEY_REVOKED,
            target=f"{key.name} ({key.prefix})",
        )
    return key


def inference_key_lookup(secret: str) -> KeyInfo | None:
    """The live key a secret names (cached CACHE_SECONDS; a miss is cached too), or None."""
    if secret_lookup(secret, marker=KEY_PREFIX, sep="-") is None:
        return None
    digest = secret_digest(secret)
    cached = cache.get(_cache_key(digest))
    if cached is not None:
        return KeyInfo(**cached) if cached else None
    key = InferenceKey.objects.filter(digest=digest, revoked_at=None).first()
    info = _info(key) if key is not None else None
    cache.set(_cache_key(digest), asdict(info) if info else {}, CACHE_SECONDS)
    return info
