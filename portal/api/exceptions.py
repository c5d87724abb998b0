"""The API's one error vocabulary (REST_FRAMEWORK["EXCEPTION_HANDLER"]): whatever a view,
service or the database raises, the caller gets JSON with a 4xx naming what was wrong, or a
JSON 500 that says nothing about the code while the traceback goes to the log.

Services raise Django's exceptions (ValidationError, PermissionDenied, ObjectDoesNotExist);
views let them through and this handler translates them once, at the edge. An app whose own
error is not Django's declares its answer here with `api_answers` (portal never imports the
apps above it)."""

import json
import logging
from collections.abc import Callable

from django.core import exceptions as django
from django.core.signals import got_request_exception
from django.db import DataError, IntegrityError
from django.db.models import ProtectedError, RestrictedError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from portal.middleware import busy_response, database_unavailable

logger = logging.getLogger("portal.api")

Answer = Callable[[Exception], exceptions.APIException]
_APP_ERRORS: dict[type[Exception], Answer] = {}


def api_answers(error_type: type[Exception], answer: Answer) -> None:
    """Declare the DRF exception that answers `error_type` (and its subclasses) wherever it
    reaches the API. The app that owns the error calls this from its api package."""
    _APP_ERRORS[error_type] = answer


def _validation_detail(error: django.ValidationError) -> dict:
    if hasattr(error, "error_dict"):
        return error.message_dict
    return {"detail": error.messages}


def as_api_exception(error: Exception) -> exceptions.APIException | None:
    """The DRF exception that answers `error`, or None when nothing should be said about it."""
    if isinstance(error, exceptions.APIException):
        return error
    for kind in type(error).__mro__:  # an app's own answer first, however it is derived
        if kind in _APP_ERRORS:
            return _APP_ERRORS[kind](error)
    if isinstance(error, django.ValidationError):
        return exceptions.ValidationError(_validation_detail(error))
    if isinstance(error, django.PermissionDenied):
        return exceptions.PermissionDenied(str(error) or None)
    if isinstance(error, django.ObjectDoesNotExist):
        return exceptions.NotFound()
    if isinstance(error, django.BadRequest):
        return exceptions.ParseError(str(error) or None)
    if isinstance(error, django.SuspiciousOperation):
        return exceptions.ParseError("The request was refused as suspicious.")
    if isinstance(error, ProtectedError | RestrictedError):
        return exceptions.ValidationError({"detail": f"Still referenced: {error.args[0]}"})
    if isinstance(error, IntegrityError):
        return exceptions.ValidationError({"detail": f"Conflicts with existing data: {error}"})
    if isinstance(error, DataError):
        # A value PostgreSQL cannot hold (a number past bigint, a string past its column).
        return exceptions.ValidationError({"detail": "A value is out of range or malformed."})
    return None


def api_exception_handler(error: Exception, context: dict) -> Response:
    translated = as_api_exception(error)
    if translated is not None:
        response = drf_exception_handler(translated, context)
        if response is not None:
            return response
    # Http404 and anything DRF itself knows of; otherwise an unexpected failure.
    response = drf_exception_handler(error, context)
    if response is not None:
        return response
    if database_unavailable(error):  # no connection to be had: busy, not broken
        set_rollback()
        busy = busy_response()
        return Response(json.loads(busy.content), status=busy.status_code, headers=busy.headers)
    request = context.get("request")
    logger.error(
        "Unhandled exception in %s",
        getattr(request, "path", "the API"),
        exc_info=(type(error), error, error.__traceback__),
    )
    # What Django does for an uncaught exception: error reporters (and the test client) hear.
    got_request_exception.send(sender=None, request=getattr(request, "_request", request))
    set_rollback()
    return Response(
        {"detail": "Internal server error."}, status=status.HTTP_500_INTERNAL_SERVER_ERROR
    )
