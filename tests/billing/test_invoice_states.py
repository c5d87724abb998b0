"""The invoice lifecycle: money first, and a paid invoice never moves again."""

from datetime import UTC, datetime

import pytest

from billing.models import Invoice
from billing.services.invoicing import invoice_payment_settled
from billing.states import INVOICE_TRANSITIONS, TransitionError, invoice_transition
from tests.portal.factories import member, organization_of

pytestmark = pytest.mark.django_db
S = Invoice.State


def _invoice(state: str, **fields) -> Invoice:
    return Invoice.objects.create(
        organization=organization_of(member()),
        period_start=datetime(2026, 10, 1, tzinfo=UTC),
        period_end=datetime(2026, 11, 1, tzinfo=UTC),
        state=state,
        **fields,
    )


def test_every_invoice_state_has_a_row_and_paid_and_void_lead_nowhere():
    assert set(INVOICE_TRANSITIONS) == set(S.values)
    assert INVOICE_TRANSITIONS[S.PAID] == INVOICE_TRANSITIONS[S.VOID] == set()


@pytest.mark.parametrize("to", [S.OPEN, S.PAYMENT_FAILED, S.VOID])
def test_given_a_paid_invoice_when_moved_anywhere_then_the_transition_is_refused(to):
    invoice = _invoice(S.PAID)
    with pytest.raises(TransitionError):
        invoice_transition(invoice=invoice, to=to, actor="test")
    invoice.refresh_from_db()
    assert invoice.state == S.PAID


def test_given_a_failed_payment_when_the_webhook_says_it_went_through_then_it_is_paid():
    invoice = _invoice(S.PAYMENT_FAILED, payment_intent_id="pi_test", payment_attempts=1)
    invoice_payment_settled(payment_intent_id="pi_test", succeeded=True)
    invoice.refresh_from_db()
    assert invoice.state == S.PAID and invoice.paid_at is not None
    assert invoice.next_attempt_at is None


def test_given_a_failed_payment_when_a_webhook_reports_another_failure_then_it_stays_failed():
    invoice = _invoice(S.PAYMENT_FAILED, payment_intent_id="pi_test", payment_attempts=1)
    invoice_payment_settled(payment_intent_id="pi_test", succeeded=False, error="declined")
    invoice.refresh_from_db()
    assert (invoice.state, invoice.last_payment_error) == (S.PAYMENT_FAILED, "declined")
