"""Offerings as plug-ins: one module per kind of product, named by Product.kind in
settings.OFFERINGS, so a new product is a module plus a line of settings."""

from __future__ import annotations

from catalog.errors import NoOffering
from catalog.offerings.base import Offering
from portal.backends import backend_class


def offering_for(kind: str) -> Offering:
    offering = backend_class("OFFERINGS", kind, Offering)
    if offering is None:
        error = NoOffering(f"Nothing can fulfil {kind!r} orders yet.")  # a customer reads this
        error.add_note(f"settings.OFFERINGS names no offering for {kind!r}.")
        raise error
    return offering()
