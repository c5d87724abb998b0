"""The billing run against Stripe's idempotency rules (localstripe behind a proxy that keeps
them): each payment attempt has its own key, an attempt whose answer was lost is repeated with
its own key and charges once, and one organization's failure never stops the run."""

import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.conf import settings

from billing import payments
from billing.models import Invoice, StripeCustomer
from billing.services.invoicing import invoices_due
from billing.services.ledger import usage_record
from tests.billing import cardholder
from tests.billing.idempotent_stripe import idempotent_stripe
from tests.portal.factories import member, organization_of

pytestmark = pytest.mark.django_db(transaction=True)
H100 = "NVIDIA H100 80GB HBM3"
OCTOBER = datetime(2026, 10, 20, tzinfo=UTC)
RUN = datetime(2026, 11, 1, 6, tzinfo=UTC)


@pytest.fixture
def stripe(stripe_peer):
    with idempotent_stripe(stripe_peer["STRIPE_API_BASE"]) as peer:
        yield peer


def _customer(number: str = cardholder.GOOD):
    """An organization with a saved card and an hour of H100 in October ($2.49)."""
    user = member(verified=True)
    org = organization_of(user)
    cardholder.save_card(user.memberships.get(), number)
    usage_record(
        organization=org, idempotency_key=f"test:{org.pk}", meter="gpu_seconds",
        item=f"{H100}:gpu", quantity=Decimal(3600), started_at=OCTOBER,
        ended_at=OCTOBER + timedelta(hours=1), source="test",
    )  # fmt: skip
    return user, org


def test_a_retry_after_a_decline_is_a_new_attempt_with_its_own_key_and_pays_with_the_new_card(
    stripe,
):
    user, org = _customer("4000000000000341")  # attaches, then declines
    assert invoices_due(now=RUN) == {"invoiced": 1, "retried": 0, "failed": 0}
    invoice = Invoice.objects.get(organization=org)
    assert invoice.state == Invoice.State.PAYMENT_FAILED
    cardholder.save_card(user.memberships.get())  # the customer replaces the card
    assert invoices_due(now=RUN + timedelta(days=1)) == {"invoiced": 0, "retried": 1, "failed": 0}
    invoice.refresh_from_db()
    assert invoice.state == Invoice.State.PAID and invoice.payment_attempts == 2
    assert stripe.charges() == [
        f"invoice-{invoice.pk}-payment-1", f"invoice-{invoice.pk}-payment-2"
    ]  # fmt: skip


def test_an_attempt_whose_answer_was_lost_is_repeated_with_its_own_key_and_charges_once(stripe):
    _, org = _customer()
    stripe.lose_replies("/v1/payment_intents", 3)  # the call and both of Stripe's own retries
    assert invoices_due(now=RUN) == {"invoiced": 1, "retried": 0, "failed": 1}
    invoice = Invoice.objects.get(organization=org)
    assert (invoice.state, invoice.payment_attempts) == (Invoice.State.OPEN, 0)
    assert invoice.next_attempt_at == RUN + timedelta(hours=1)
    assert invoices_due(now=RUN + timedelta(minutes=30))["retried"] == 0  # not yet
    assert invoices_due(now=RUN + timedelta(hours=1))["retried"] == 1
    invoice.refresh_from_db()
    assert invoice.state == Invoice.State.PAID and invoice.payment_attempts == 1
    key = f"invoice-{invoice.pk}-payment-1"
    assert stripe.keys_for("/v1/payment_intents") == [key] * 4  # the same attempt each time
    assert stripe.charges() == [key]  # and one charge


def test_a_charge_stripe_refuses_for_one_organization_does_not_stop_the_run(stripe):
    _, gone = _customer()
    # The customer was deleted in Stripe's dashboard: Stripe answers 404 `resource_missing`.
    StripeCustomer.objects.filter(organization=gone).update(stripe_id="cus_deleted0000000")
    _, later = _customer()
    assert invoices_due(now=RUN) == {"invoiced": 2, "retried": 0, "failed": 0}
    refused = Invoice.objects.get(organization=gone)
    assert refused.state == Invoice.State.PAYMENT_FAILED
    assert "refused" in refused.last_payment_error
    assert refused.next_attempt_at == RUN + timedelta(days=1)
    assert Invoice.objects.get(organization=later).state == Invoice.State.PAID


def test_an_unexpected_error_for_one_organization_is_logged_and_the_run_goes_on(
    stripe, monkeypatch, caplog
):
    _, broken = _customer()
    _, later = _customer()
    broken_customer = broken.stripe_customer.stripe_id
    charge = payments.payment_intent_charge

    def charge_or_fail(**kwargs):  # the loop is under test here, not Stripe
        if kwargs["customer_id"] == broken_customer:
            raise RuntimeError("something nobody planned for")
        return charge(**kwargs)

    monkeypatch.setattr(payments, "payment_intent_charge", charge_or_fail)
    with caplog.at_level(logging.ERROR, logger="billing.services.invoicing"):
        assert invoices_due(now=RUN) == {"invoiced": 2, "retried": 0, "failed": 1}
    assert Invoice.objects.get(organization=later).state == Invoice.State.PAID
    failed = Invoice.objects.get(organization=broken)
    assert (failed.state, failed.payment_attempts) == (Invoice.State.OPEN, 0)
    assert failed.next_attempt_at == RUN + timedelta(hours=1)
    assert f"organization {broken.pk}" in caplog.text and "RuntimeError" in caplog.text
    assert settings.STRIPE_SECRET_KEY not in caplog.text
    monkeypatch.setattr(payments, "payment_intent_charge", charge)
    assert invoices_due(now=RUN + timedelta(hours=1))["retried"] == 1  # tried again, paid
    failed.refresh_from_db()
    assert failed.state == Invoice.State.PAID
