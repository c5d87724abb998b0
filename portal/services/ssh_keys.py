"""SSH public keys, validated and fingerprinted before they are stored."""

import base64
import hashlib
import re

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from portal.models import AuditEvent, SshKey, User
from portal.services.audit import Actor, audit_record

MIN_RSA_BITS = 3072
ALLOWED_TYPES = {
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
}
_KEY_LINE = re.compile(r"^(?P<type>[a-z0-9@.-]+) (?P<blob>[A-Za-z0-9+/]+={0,3})(?: .*)?$")


def ssh_key_parse(text: str) -> tuple[str, str, int, str]:
    """(key type, normalised `type base64`, bits, SHA256 fingerprint) or ValidationError."""
    line = " ".join(text.split())
    match = _KEY_LINE.match(line)
    if not match:
        raise ValidationError(
            {"public_key": "Paste one public key line: type, base64 and an optional comment."}
        )
    key_type, blob = match["type"], match["blob"]
    if key_type not in ALLOWED_TYPES:
        allowed = ", ".join(sorted(ALLOWED_TYPES))
        raise ValidationError({"public_key": f"Key type {key_type} is not accepted ({allowed})."})
    normalised = f"{key_type} {blob}"
    try:
        key = serialization.load_ssh_public_key(normalised.encode())
        raw = base64.b64decode(blob, validate=True)
    except (ValueError, TypeError) as exc:
        raise ValidationError({"public_key": f"The {key_type} key does not decode: {exc}"}) from exc
    if isinstance(key, rsa.RSAPublicKey):
        bits = key.key_size
        if bits < MIN_RSA_BITS:
            raise ValidationError(
                {"public_key": f"RSA keys need at least {MIN_RSA_BITS} bits; this one has {bits}."}
            )
    elif isinstance(key, ec.EllipticCurvePublicKey):
        bits = key.curve.key_size
    elif isinstance(key, ed25519.Ed25519PublicKey):
        bits = 256
    else:
        raise ValidationError({"public_key": f"Unsupported key type {key_type}."})
    digest = base64.b64encode(hashlib.sha256(raw).digest()).decode().rstrip("=")
    return key_type, normalised, bits, f"SHA256:{digest}"


@transaction.atomic
def ssh_key_add(*, user: User, name: str, public_key: str, actor: Actor) -> SshKey:
    key_type, normalised, bits, fingerprint = ssh_key_parse(public_key)
    if user.ssh_keys.filter(fingerprint=fingerprint).exists():
        raise ValidationError({"public_key": f"You already added this key ({fingerprint})."})
    key = SshKey.objects.create(
        user=user,
        name=name.strip()[:80] or key_type,
        key_type=key_type,
        bits=bits,
        public_key=normalised,
        fingerprint=fingerprint,
    )
    audit_record(action=AuditEvent.Action.SSH_KEY_ADDED, actor=actor, target=fingerprint)
    return key


@transaction.atomic
def ssh_key_remove(*, user: User, key: SshKey, actor: Actor) -> None:
    if key.user_id != user.pk:
        raise PermissionDenied("Not your key.")
    key.delete()
    audit_record(action=AuditEvent.Action.SSH_KEY_REMOVED, actor=actor, target=key.fingerprint)
