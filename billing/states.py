"""The invoice lifecycle as a transition table. Money first: an invoice moves only after the
step it records (credit applied, Stripe's answer to an attempt, a webhook) is done."""

from billing.models import Invoice
from portal.states import TransitionError, transition

__all__ = ["INVOICE_TRANSITIONS", "TransitionError", "invoice_transition"]

S = Invoice.State
INVOICE_TRANSITIONS: dict[str, set[str]] = {
    S.OPEN: {S.PAID, S.PAYMENT_FAILED},
    # A retry, or a webhook about an earlier attempt, can fail again.
    S.PAYMENT_FAILED: {S.PAID, S.PAYMENT_FAILED},
    S.PAID: set(),
    S.VOID: set(),  # nothing voids an invoice yet
}


def invoice_transition(*, invoice: Invoice, to: str, actor: str) -> None:
    """Move a locked invoice; the caller saves the fields that go with the move (paid_at)."""
    transition(invoice, to=to, table=INVOICE_TRANSITIONS, event_model=None, actor=actor)
