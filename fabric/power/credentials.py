"""Password references: a BMC's password named rather than stored, read each time the BMC is
used, so a secret manager that writes files or the environment rotates it without the platform.

- `env:VARIABLE` — an environment variable of the process using the BMC. The name must contain
  `BMC`, so a reference can never send the platform's own secrets (its secret key, database
  URL, card keys) to a BMC address an operator typed.
- `file:/absolute/path` — a file under one of settings.BMC_CREDENTIAL_DIRS (by default
  /etc/storefront/bmc and /run/secrets, where container platforms mount secrets); its content
  without the final newline is the password.

The messages say what is wrong with the reference, never what a variable or file holds."""

from __future__ import annotations

import os
import re
from pathlib import Path

from django.conf import settings

SCHEMES = ("env", "file")
DEFAULT_DIRS = ("/etc/storefront/bmc", "/run/secrets")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class BadReference(ValueError):
    """A reference that cannot be read; the message is safe to show."""


def _dirs() -> list[Path]:
    return [Path(d) for d in getattr(settings, "BMC_CREDENTIAL_DIRS", DEFAULT_DIRS)]


def _parse(ref: str) -> tuple[str, str]:
    scheme, sep, rest = ref.partition(":")
    if not sep or scheme not in SCHEMES:
        raise BadReference(
            f"{ref[:40]!r} is not a password reference: use env:VARIABLE or file:/path"
        )
    if not rest:
        raise BadReference(f"{scheme}: names nothing")
    return scheme, rest


def _file(rest: str) -> Path:
    path = Path(rest)
    if not path.is_absolute():
        raise BadReference(f"file:{rest} is not an absolute path")
    resolved = path.resolve()
    dirs = _dirs()
    if not any(resolved.is_relative_to(d.resolve()) for d in dirs):
        allowed = ", ".join(str(d) for d in dirs) or "none configured"
        raise BadReference(f"file:{rest} is outside the BMC credential folders ({allowed})")
    if not resolved.is_file():
        raise BadReference(f"file:{rest} does not exist")
    return resolved


def reference_check(ref: str) -> None:
    """Raise BadReference unless `ref` names a password that can be read now."""
    reference_read(ref)


def reference_read(ref: str) -> str:
    """The password `ref` names, read now."""
    scheme, rest = _parse(ref)
    if scheme == "env":
        if not _VARIABLE.fullmatch(rest):
            raise BadReference(f"env:{rest} is not a variable name")
        if "BMC" not in rest.upper():
            raise BadReference(f"env:{rest} is not a BMC variable (its name must contain BMC)")
        value = os.environ.get(rest)
        if value is None:
            raise BadReference(f"env:{rest} is not set")
    else:
        try:
            value = _file(rest).read_text().removesuffix("\n")
        except OSError:
            raise BadReference(f"file:{rest} cannot be read") from None
    if not value:
        raise BadReference(f"{scheme}:{rest} is empty")
    return value
