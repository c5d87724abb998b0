"""Stripe webhooks, with localstripe's real signed deliveries: stored once by event id, processed
by a real worker from Stripe's current state, replays and forgeries harmless."""

import http.server
import json
import threading
import time
import urllib.error
import urllib.request

import pytest

from billing.models import Card, WebhookEvent
from portal import embedded, localstripe
from tests.billing import cardholder
from tests.portal.factories import member

pytestmark = pytest.mark.django_db(transaction=True)


def _wait_for(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


@pytest.fixture(scope="module")
def captured(stripe_peer):
    """A second endpoint registered with localstripe that records raw deliveries."""
    deliveries = []

    class Capture(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            deliveries.append((body, self.headers["Stripe-Signature"]))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    port = embedded.free_port()
    server = http.server.HTTPServer(("127.0.0.1", port), Capture)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    localstripe.register_webhook(
        api_base=stripe_peer["STRIPE_API_BASE"],
        name="capture",
        url=f"http://127.0.0.1:{port}/",
        secret=stripe_peer["STRIPE_WEBHOOK_SECRET"],
    )
    yield deliveries
    server.shutdown()


def _post(url, body, signature):
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Stripe-Signature": signature}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_given_a_card_change_in_stripe_then_the_signed_event_is_stored_once_and_synced(
    live_stack,
):
    membership = member().memberships.get()
    card = cardholder.save_card(membership)
    customer = membership.organization.stripe_customer.stripe_id
    # The customer clears the default card in Stripe itself (dashboard, another app, …).
    cardholder._client().v1.customers.update(
        customer, params={"invoice_settings": {"default_payment_method": ""}}
    )

    def synced():
        card.refresh_from_db()
        return not card.is_default

    _wait_for(synced)
    updates = WebhookEvent.objects.filter(type="customer.updated")
    assert updates.exists()
    _wait_for(lambda: not updates.filter(processed_at=None).exists())  # the worker did them all


def test_given_a_replayed_or_duplicated_delivery_then_one_row_and_200_each_time(
    live_stack, captured
):
    captured.clear()
    membership = member().memberships.get()
    cardholder.save_card(membership)
    body, signature = _wait_for(lambda: captured and captured[0])
    url = f"{live_stack.url}/billing/stripe/webhook/"
    event_id = json.loads(body)["id"]
    _wait_for(lambda: WebhookEvent.objects.filter(stripe_event_id=event_id).exists())
    assert [_post(url, body, signature) for _ in range(3)] == [200, 200, 200]
    assert WebhookEvent.objects.filter(stripe_event_id=event_id).count() == 1


def test_given_a_forged_signature_or_altered_body_then_400_and_nothing_stored(live_stack, captured):
    captured.clear()
    membership = member().memberships.get()
    cardholder.save_card(membership)
    body, signature = _wait_for(lambda: captured and captured[0])
    before = WebhookEvent.objects.count()
    url = f"{live_stack.url}/billing/stripe/webhook/"
    forged = signature.split("v1=")[0] + "v1=" + "0" * 64
    altered = body.replace(b'"livemode": false', b'"livemode": true')
    assert _post(url, body, forged) == 400
    assert _post(url, altered, signature) == 400
    assert _post(url, body, "") == 400
    time.sleep(0.5)
    # Only the genuine delivery (sent by localstripe itself) may have landed.
    assert WebhookEvent.objects.count() <= before + 1
    assert not WebhookEvent.objects.filter(payload__livemode=True).exists()


def test_given_events_out_of_order_then_the_state_follows_stripe_not_the_last_event(
    live_stack, captured
):
    captured.clear()
    membership = member().memberships.get()
    first = cardholder.save_card(membership)  # customer.updated: default = first
    second = cardholder.save_card(
        membership, "5555555555554444"
    )  # customer.updated: default = second
    _wait_for(lambda: len([b for b, _ in captured if b"customer.updated" in b]) >= 2)
    updates = [(b, s) for b, s in captured if b'"customer.updated"' in b]
    WebhookEvent.objects.all().delete()  # receive them again, newest first
    url = f"{live_stack.url}/billing/stripe/webhook/"
    for body, signature in reversed(updates):
        assert _post(url, body, signature) == 200
    _wait_for(lambda: WebhookEvent.objects.filter(processed_at__isnull=False).count() >= 2)
    assert list(Card.objects.values_list("pk", "is_default")) == [(second.pk, True)]
    assert not Card.objects.filter(pk=first.pk).exists()


def test_a_payment_settled_by_webhook_marks_the_invoice_paid(live_stack):
    from datetime import UTC, datetime
    from decimal import Decimal

    from billing import payments
    from billing.models import Invoice
    from billing.services.invoicing import invoice_create
    from billing.services.ledger import usage_record

    membership = member().memberships.get()
    card = cardholder.save_card(membership)
    start = datetime(2026, 10, 1, tzinfo=UTC)
    usage_record(
        organization=membership.organization, idempotency_key="wh:1", meter="gpu_seconds",
        item="NVIDIA H100 80GB HBM3:gpu", quantity=Decimal(3600), started_at=start,
        ended_at=start, source="test",
    )  # fmt: skip
    invoice = invoice_create(
        organization=membership.organization, start=start, end=datetime(2026, 11, 1, tzinfo=UTC)
    )
    # The charge goes out, but its outcome is left to the webhook (as for a slow payment).
    result = payments.payment_intent_charge(
        customer_id=membership.organization.stripe_customer.stripe_id,
        payment_method_id=card.stripe_payment_method_id,
        amount_cents=int(invoice.total_due * 100), currency="usd", invoice_id=invoice.pk,
    )  # fmt: skip
    Invoice.objects.filter(pk=invoice.pk).update(payment_intent_id=result.payment_intent_id)

    def paid():
        invoice.refresh_from_db()
        return invoice.state == Invoice.State.PAID

    _wait_for(paid)
    assert WebhookEvent.objects.filter(type="payment_intent.succeeded", processed_at__isnull=False)
