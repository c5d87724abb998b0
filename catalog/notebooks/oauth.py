"""The OAuth2 application JupyterHub signs users in with, and the userinfo it reads."""

from __future__ import annotations

import secrets

from django.db import transaction
from oauth2_provider.models import Application

from catalog.notebooks.hub import hub_name

CLIENT_ID = "jupyterhub"


@transaction.atomic
def hub_application_ensure(*, redirect_uri: str, secret: str | None = None) -> tuple[str, str]:
    """Create or update the hub's application with `secret` or a fresh one (stored hashed);
    returns (client id, secret) for the hub's configuration. The hub is first-party: no
    consent page."""
    secret = secret or secrets.token_urlsafe(32)
    Application.objects.update_or_create(
        client_id=CLIENT_ID,
        defaults={
            "name": "JupyterHub",
            "client_type": Application.CLIENT_CONFIDENTIAL,
            "authorization_grant_type": Application.GRANT_AUTHORIZATION_CODE,
            "redirect_uris": redirect_uri,
            "skip_authorization": True,
            "client_secret": secret,
            "algorithm": "",
        },
    )
    return CLIENT_ID, secret


def userinfo_for(user) -> dict:
    return {
        "username": hub_name(user.pk),
        "email": user.email,
        "name": user.get_full_name() or user.username,
    }
