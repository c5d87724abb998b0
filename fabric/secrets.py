"""Secrets the database must hold but never show (BMC passwords), encrypted with the Fernet
keys in settings.SECRETS_KEYS (STOREFRONT_SECRETS_KEYS): the first encrypts, any decrypts, so
keys rotate without a flag day."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class SecretUnreadable(Exception):
    """Encrypted under a key that is no longer configured."""


def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(key) for key in settings.SECRETS_KEYS])


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable("Encrypted with a key that is not configured.") from exc
