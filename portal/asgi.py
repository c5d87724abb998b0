"""ASGI entry point: the token gateway's /v1/ straight to its own ASGI app (no Django request
cycle on the per-token path), other HTTP through Django, websockets through Channels with
session auth."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django_application = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs the apps loaded)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from catalog.gateway.app import application as gateway  # noqa: E402
from portal.routing import websocket_urlpatterns  # noqa: E402


async def http(scope, receive, send):
    if scope["path"].startswith("/v1/"):
        return await gateway(scope, receive, send)
    return await django_application(scope, receive, send)


application = ProtocolTypeRouter(
    {
        "http": http,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
