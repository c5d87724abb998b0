"""The errors the catalog exports. An order's step ends with one of the first two: offerings
translate what their peers raise (fabric's power and network errors, billing's payment errors,
the hub's) into these at the edge; the order machinery and its tasks know only these and the
database's OperationalError."""

from __future__ import annotations


class StepTransient(Exception):
    """Try the step again later (with backoff); after too many tries it becomes fatal."""


class StepFatal(Exception):
    """The order cannot go on. The message tells the tenant what happened."""


class NoOffering(LookupError):
    """No offering fulfils this kind of product (settings.OFFERINGS names none). The message
    is for the customer: the API answers it as a 400 on `product`."""
