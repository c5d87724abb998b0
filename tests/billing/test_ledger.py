"""The usage ledger and the money cycle, on real PostgreSQL and localstripe."""

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from billing.models import CreditGrant, Invoice, Rate, UsageEvent
from billing.rating import charges
from billing.selectors import credit_balance
from billing.services.invoicing import invoice_create, invoice_pay
from billing.services.ledger import usage_correct, usage_record
from tests.billing import cardholder
from tests.portal.factories import member, organization_of

H100 = "NVIDIA H100 80GB HBM3"
T0 = datetime(2026, 11, 1, tzinfo=UTC)
MONTH = (T0, datetime(2026, 12, 1, tzinfo=UTC))


def _gpu(org, key, seconds, start=T0):
    return usage_record(
        organization=org, idempotency_key=key, meter="gpu_seconds", item=f"{H100}:node",
        quantity=Decimal(seconds), started_at=start, ended_at=start + timedelta(seconds=seconds),
        source="test",
    )  # fmt: skip


@pytest.mark.django_db
def test_a_replayed_usage_event_is_counted_once():
    org = organization_of(member())
    first, created = _gpu(org, "allocation:1:2026-11-01T00:00", 3600)
    again, created_again = _gpu(org, "allocation:1:2026-11-01T00:00", 3600)
    assert (created, created_again) == (True, False) and first.pk == again.pk
    (line,) = charges(organization=org, start=MONTH[0], end=MONTH[1])
    assert (line.units, line.amount) == (Decimal(1), Decimal("2.49"))


@pytest.mark.django_db
def test_corrections_are_compensating_entries_and_the_original_stays():
    org = organization_of(member())
    event, _ = _gpu(org, "allocation:2:a", 7200)
    usage_correct(event=event, quantity=Decimal(-3600), reason="node was not usable for 1 h")
    usage_correct(event=event, quantity=Decimal(-3600), reason="node was not usable for 1 h")
    event.refresh_from_db()
    assert event.quantity == 7200 and UsageEvent.objects.count() == 2
    (line,) = charges(organization=org, start=MONTH[0], end=MONTH[1])
    assert line.amount == Decimal("2.49")


@pytest.mark.django_db
def test_tokens_and_notebooks_are_rated_by_their_rates():
    org = organization_of(member())
    Rate.objects.create(
        meter="input_tokens",
        item="smollm2",
        unit="million",
        unit_quantity=10**6,
        price=Decimal("0.10"),
    )
    Rate.objects.create(
        meter="output_tokens", item="*", unit="million", unit_quantity=10**6, price=Decimal("0.40")
    )
    for meter, quantity in (("input_tokens", 2_500_000), ("output_tokens", 1_000_000)):
        usage_record(
            organization=org, idempotency_key=f"request:{meter}", meter=meter, item="smollm2",
            quantity=Decimal(quantity), started_at=T0, ended_at=T0, source="gateway",
        )  # fmt: skip
    amounts = {c.meter: c.amount for c in charges(organization=org, start=MONTH[0], end=MONTH[1])}
    assert amounts == {"input_tokens": Decimal("0.25"), "output_tokens": Decimal("0.40")}


@pytest.mark.django_db(transaction=True)
def test_concurrent_writes_from_several_worker_processes_lose_nothing():
    from tests.conftest import _test_database_url

    org = organization_of(member())
    script = (
        "import os, sys, django; os.environ['DJANGO_SETTINGS_MODULE']='portal.settings'; "
        "django.setup()\n"
        "from datetime import UTC, datetime\nfrom decimal import Decimal\n"
        "from billing.services.ledger import usage_record\nfrom portal.models import Organization\n"
        "org = Organization.objects.get(pk=int(sys.argv[1])); w = int(sys.argv[2])\n"
        "t = datetime(2026, 11, 1, tzinfo=UTC)\n"
        "for n in range(w * 50, w * 50 + 150):\n"
        "    usage_record(organization=org, idempotency_key=f'k:{n}', meter='gpu_seconds',"
        " item='x:gpu', quantity=Decimal(60), started_at=t, ended_at=t, source=f'w{w}')\n"
    )
    env = {**__import__("os").environ, "DATABASE_URL": _test_database_url()}
    workers = [
        subprocess.Popen([sys.executable, "-c", script, str(org.pk), str(w)], env=env)
        for w in range(4)
    ]
    assert [p.wait(timeout=120) for p in workers] == [0, 0, 0, 0]
    # Workers overlap (w*50 .. w*50+149): keys 0..299, each written once, none lost.
    events = UsageEvent.objects.filter(organization=org)
    assert events.count() == 300
    assert sum(e.quantity for e in events) == Decimal(300 * 60)


@pytest.mark.django_db(transaction=True)
def test_the_whole_cycle_spends_credit_first_then_charges_the_card():
    user = member()
    org = organization_of(user)
    cardholder.save_card(user.memberships.get())
    CreditGrant.objects.create(organization=org, amount=Decimal("2.00"))
    _gpu(org, "allocation:9:a", 7200)  # 2 GPU-hours = $4.98
    invoice = invoice_create(organization=org, start=MONTH[0], end=MONTH[1])
    assert (invoice.subtotal, invoice.credit_applied, invoice.total_due) == (
        Decimal("4.98"), Decimal("2.00"), Decimal("2.98"),
    )  # fmt: skip
    assert credit_balance(organization=org) == 0
    invoice = invoice_pay(invoice=invoice)
    assert invoice.state == Invoice.State.PAID and invoice.payment_intent_id.startswith("pi_")
    assert invoice_pay(invoice=invoice).payment_attempts == 1  # paid: not charged again
    assert invoice_create(organization=org, start=MONTH[0], end=MONTH[1]) == invoice  # once


@pytest.mark.django_db(transaction=True)
def test_a_declined_charge_leaves_the_invoice_failed_with_the_reason():
    user = member()
    org = organization_of(user)
    cardholder.save_card(user.memberships.get(), "4000000000000341")  # attaches, then declines
    _gpu(org, "allocation:10:a", 3600)
    invoice = invoice_pay(invoice=invoice_create(organization=org, start=MONTH[0], end=MONTH[1]))
    assert invoice.state == Invoice.State.PAYMENT_FAILED
    assert "declined" in invoice.last_payment_error
    assert invoice_pay(invoice=invoice).payment_attempts == 2


@pytest.mark.django_db(transaction=True)
def test_a_declined_card_is_retried_on_schedule_then_orders_are_suspended_until_paid():
    from billing.services.invoicing import invoices_due
    from catalog.selectors.storefront import purchase_blockers

    user = member(verified=True)
    org = organization_of(user)
    cardholder.save_card(user.memberships.get(), "4000000000000341")
    _gpu(org, "allocation:11:a", 3600, start=datetime(2026, 10, 20, tzinfo=UTC))
    now = datetime(2026, 11, 1, 6, tzinfo=UTC)
    assert invoices_due(now=now) == {"invoiced": 1, "retried": 0, "failed": 0}  # October
    invoice = Invoice.objects.get()
    assert invoice.state == "payment_failed" and invoice.next_attempt_at == now + timedelta(days=1)
    assert invoices_due(now=now + timedelta(hours=12))["retried"] == 0  # not due yet
    for days in (1, 4, 9):
        assert invoices_due(now=now + timedelta(days=days))["retried"] == 1
    invoice.refresh_from_db()
    assert invoice.payment_attempts == 4 and invoice.next_attempt_at is None
    blockers = purchase_blockers(user=user, membership=user.memberships.get())
    assert f"Ordering is suspended: {invoice} is unpaid." in blockers
    # A good card and one more try: paid, and the suspension is lifted.
    cardholder.save_card(user.memberships.get())
    assert invoice_pay(invoice=invoice).state == "paid"
    assert purchase_blockers(user=user, membership=user.memberships.get()) == []
