import asyncio
import weakref

from django.conf import settings
from django.db import OperationalError, connection
from django.http import JsonResponse

from portal import selectors

SESSION_KEY = "organization_id"
RETRY_AFTER_SECONDS = 1


class CurrentOrganizationMiddleware:
    """Sets request.membership: the signed-in user's membership in the organization they act
    for (None when anonymous or in no organization). API tokens replace it with their own."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.membership = None
        if request.user.is_authenticated:
            request.membership = selectors.membership_current(
                user=request.user, organization_id=request.session.get(SESSION_KEY)
            )
        return self.get_response(request)


# --- saturation: 503 with Retry-After, never a 500 ----------------------------------------------


def busy_response() -> JsonResponse:
    """What a saturated server answers: try again shortly (JSON, whatever the page)."""
    response = JsonResponse({"detail": "The service is busy; try again in a moment."}, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def database_unavailable(error: BaseException) -> bool:
    """Whether `error` says no database connection could be had (the pool timed out, the server
    has too many clients, is starting, shutting down or unreachable), rather than that a query
    failed. Connection failures carry no SQLSTATE, or one of class 08, 53300 or 57P0x."""
    if not isinstance(error, OperationalError):
        return False
    cause = error.__cause__
    if type(cause).__name__ == "PoolTimeout":
        return True
    sqlstate = getattr(cause, "sqlstate", None)
    return sqlstate is None or sqlstate.startswith(("08", "57P0")) or sqlstate == "53300"


class ThreadLimit:
    """ASGI middleware around Django (portal.asgi): at most WEB_THREADS requests of a web
    process run Django's synchronous code at once, each in its own thread holding a database
    connection from the pool; the others wait in the event loop, where waiting costs no thread,
    and one that has waited DATABASE_POOL_TIMEOUT seconds answers 503 with Retry-After."""

    def __init__(self, app):
        self.app = app
        self.slots: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # loop -> semaphore

    async def __call__(self, scope, receive, send) -> None:
        loop = asyncio.get_running_loop()
        slots = self.slots.get(loop)
        if slots is None:
            slots = self.slots[loop] = asyncio.Semaphore(settings.WEB_THREADS)
        try:
            await asyncio.wait_for(slots.acquire(), settings.DATABASE_POOL_TIMEOUT)
        except TimeoutError:
            busy = busy_response()
            headers = [(k.lower().encode(), v.encode()) for k, v in busy.items()]
            await send({"type": "http.response.start", "status": 503, "headers": headers})
            await send({"type": "http.response.body", "body": busy.content})
            return
        try:
            await self.app(scope, receive, send)
        finally:
            slots.release()


class DatabaseBusyMiddleware:
    """Takes the request's database connection before anything else needs it, so a pool that
    has none to spare (or a server with too many clients) answers 503 with Retry-After instead
    of failing somewhere inside a view with a 500; a connection lost later in the request is
    answered the same way (process_exception, for views that let it through)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            connection.ensure_connection()
        except OperationalError as error:
            if database_unavailable(error):
                return busy_response()
            raise
        return self.get_response(request)

    def process_exception(self, request, exception):
        if database_unavailable(exception):
            return busy_response()
        return None
