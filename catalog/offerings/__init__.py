"""Offerings as plug-ins: one module per kind of product, registered by Product.kind."""

from __future__ import annotations

from catalog.offerings.base import Offering


def offering_for(kind: str) -> Offering:
    from catalog.offerings.bare_metal import BareMetal
    from catalog.offerings.notebook import Notebook

    registry: dict[str, type[Offering]] = {BareMetal.kind: BareMetal, Notebook.kind: Notebook}
    try:
        return registry[kind]()
    except KeyError:
        raise LookupError(f"Nothing can fulfil {kind!r} orders yet.") from None
