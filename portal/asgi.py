"""ASGI entry point: the token gateway's /v1/ straight to its own ASGI app (no Django request
cycle on the per-token path), websockets through Channels with session auth, and other HTTP
through Django's WSGI handler on a fixed pool of WEB_THREADS threads (a2wsgi): the views are
synchronous, and a thread that lives across requests keeps its caches and spares Django's
ASGI handler a new thread and three hand-offs per request (docs/runtime.md)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("DATABASE_POOL", "1")  # a web server pools its connections (settings)
django_application = get_wsgi_application()

from a2wsgi import WSGIMiddleware  # noqa: E402
from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs the apps loaded)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from catalog.gateway.app import application as gateway  # noqa: E402
from portal.middleware import ThreadLimit  # noqa: E402
from portal.routing import websocket_urlpatterns  # noqa: E402

# WEB_THREADS requests in Django at a time, the rest wait (503 after DATABASE_POOL_TIMEOUT).
django_http = ThreadLimit(WSGIMiddleware(django_application, workers=settings.WEB_THREADS))


async def http(scope, receive, send):
    if scope["path"].startswith("/v1/"):
        return await gateway(scope, receive, send)
    return await django_http(scope, receive, send)


application = ProtocolTypeRouter(
    {
        "http": http,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
