"""Bearer secrets shown once: API tokens and inference keys. A secret reads
`<marker><sep><lookup><sep><random>`; the marker says what kind of secret it is, the lookup
names the record in lists and logs without revealing it, and only a SHA-256 digest of the
whole secret is stored. Nothing here can show a secret again (unlike `fabric/secrets.py`,
which encrypts BMC passwords the platform must read back).

The digest is the stored contract: changing `secret_digest` would lock out every key issued."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Protocol

from django.utils import timezone

LOOKUP_BYTES = 4  # 8 hex characters
SECRET_BYTES = 32


@dataclass(frozen=True)
class IssuedSecret:
    lookup: str
    plain: str  # handed to the caller once, never stored
    digest: str

    def __repr__(self) -> str:
        return f"IssuedSecret(lookup={self.lookup!r}, plain=<hidden>)"


class Revocable(Protocol):
    revoked_at: object

    def save(self, *, update_fields: list[str]) -> None: ...


def secret_digest(plain: str) -> str:
    return hashlib.sha256(plain.encode()).hexdigest()


def secret_generate(*, marker: str, sep: str = "_") -> IssuedSecret:
    lookup = secrets.token_hex(LOOKUP_BYTES)
    plain = f"{marker}{sep}{lookup}{sep}{secrets.token_urlsafe(SECRET_BYTES)}"
    return IssuedSecret(lookup=lookup, plain=plain, digest=secret_digest(plain))


def secret_lookup(plain: str, *, marker: str, sep: str = "_") -> str | None:
    """The lookup part of a secret of this kind, or None if `plain` is not one."""
    if not plain.startswith(marker + sep):
        return None
    parts = plain[len(marker) + len(sep) :].split(sep, 1)  # the random part may contain sep
    return parts[0] if len(parts) == 2 else None


def secret_verify(plain: str, digest: str) -> bool:
    """Whether `plain` is the secret stored as `digest`, in constant time."""
    return hmac.compare_digest(digest, secret_digest(plain))


def secret_revoke(record: Revocable) -> bool:
    """Mark a token or key revoked; True if it was live until now (so the caller audits once)."""
    if record.revoked_at is not None:
        return False
    record.revoked_at = timezone.now()
    record.save(update_fields=["revoked_at"])
    return True
