"""Backends chosen by a setting, like Django's EMAIL_BACKEND: a setting maps a name (a switch
platform, a BMC protocol, a product kind) to the dotted path of a class, so a new vendor or
product is a module plus a line of settings. Each class is imported once per process."""

from __future__ import annotations

import functools
from typing import TypeVar

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

T = TypeVar("T")


@functools.cache
def _load(path: str) -> object:
    return import_string(path)


def backend_class(setting: str, name: str, base: type[T]) -> type[T] | None:
    """The class that `settings.<setting>` names for `name`, or None when it names none. A
    path that does not import, or names no subclass of `base`, is ImproperlyConfigured."""
    path = getattr(settings, setting).get(name)
    if path is None:
        return None
    try:
        cls = _load(path)
    except ImportError as error:
        raise ImproperlyConfigured(
            f"settings.{setting}[{name!r}] = {path!r} cannot be imported: {error}"
        ) from error
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ImproperlyConfigured(
            f"settings.{setting}[{name!r}] = {path!r} is not a {base.__name__}."
        )
    return cls
