"""The errors billing raises to its callers: the customer's (a declined card: say so) and the
payment rail's (Stripe away or failing: try again). Callers catch these, never `stripe`'s."""

from __future__ import annotations


class PaymentError(Exception):
    """The customer's card or action failed; the message is safe to show them."""


class PaymentUnavailable(Exception):
    """Stripe could not be reached or failed on its side: retry later."""
