"""Stripe, the payment rail: the only module that imports `stripe`. Our ledger and invoices are
the truth; Stripe holds cards and moves money. Errors come out as three kinds: the customer's
(a declined card: say so), transient (retry), and a forged webhook."""

from __future__ import annotations

from dataclasses import dataclass

import stripe
from django.conf import settings

# The calls below raise billing's public payment errors; named here too for their callers.
from billing.errors import PaymentError as PaymentError
from billing.errors import PaymentUnavailable as PaymentUnavailable


class WebhookSignatureError(Exception):
    pass


@dataclass(frozen=True)
class CardDetails:
    payment_method_id: str
    customer_id: str | None
    brand: str
    last4: str
    exp_month: int
    exp_year: int


@dataclass(frozen=True)
class SetupResult:
    status: str
    customer_id: str | None
    payment_method_id: str | None
    error: str


def configured() -> bool:
    return bool(settings.STRIPE_SECRET_KEY)


def _client() -> stripe.StripeClient:
    if not configured():
        raise PaymentUnavailable("Payments are not configured (STRIPE_SECRET_KEY is unset).")
    addresses = {"api": settings.STRIPE_API_BASE} if settings.STRIPE_API_BASE else {}
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY, base_addresses=addresses, max_network_retries=2
    )


def _call(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except stripe.CardError as exc:
        raise PaymentError(exc.user_message or "Your card was declined.") from exc
    except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
        raise PaymentUnavailable("The payment service is unreachable; try again shortly.") from exc
    except stripe.APIError as exc:
        raise PaymentUnavailable("The payment service failed; try again shortly.") from exc
    except stripe.StripeError as exc:
        # A request Stripe refused (a bad or missing object): ours to fix, not the customer's.
        raise PaymentUnavailable(
            f"The payment service refused the request: {exc.user_message}"
        ) from exc


def customer_create(*, organization_id: int, name: str, email: str) -> str:
    customer = _call(
        _client().v1.customers.create,
        params={
            "name": name,
            "email": email,
            "metadata": {"organization_id": str(organization_id)},
        },
        options={"idempotency_key": f"organization-{organization_id}-customer"},
    )
    return customer.id


def setup_intent_create(*, customer_id: str, organization_id: int) -> tuple[str, str]:
    """A SetupIntent to save a card for off-session charges: (id, client secret)."""
    intent = _call(
        _client().v1.setup_intents.create,
        params={
            "customer": customer_id,
            "payment_method_types": ["card"],
            "usage": "off_session",
            "metadata": {"organization_id": str(organization_id)},
        },
    )
    return intent.id, intent.client_secret


def setup_intent_retrieve(setup_intent_id: str) -> SetupResult:
    intent = _call(_client().v1.setup_intents.retrieve, setup_intent_id)
    error = getattr(intent, "last_setup_error", None)
    return SetupResult(
        status=intent.status,
        customer_id=intent.customer,
        payment_method_id=intent.payment_method,
        error=(getattr(error, "message", "") or "") if error else "",
    )


def _card(pm) -> CardDetails:
    return CardDetails(
        payment_method_id=pm.id,
        customer_id=pm.customer,
        brand=pm.card.brand,
        last4=pm.card.last4,
        exp_month=int(pm.card.exp_month),
        exp_year=int(pm.card.exp_year),
    )


def payment_method_retrieve(payment_method_id: str) -> CardDetails:
    return _card(_call(_client().v1.payment_methods.retrieve, payment_method_id))


def payment_method_attach(*, payment_method_id: str, customer_id: str) -> CardDetails:
    pm = _call(
        _client().v1.payment_methods.attach,
        payment_method_id,
        params={"customer": customer_id},
    )
    return _card(pm)


def payment_method_detach(payment_method_id: str) -> None:
    _call(_client().v1.payment_methods.detach, payment_method_id)


def customer_default_payment_method(customer_id: str) -> str | None:
    customer = _call(_client().v1.customers.retrieve, customer_id)
    settings_ = getattr(customer, "invoice_settings", None)
    default = getattr(settings_, "default_payment_method", None) if settings_ else None
    return default if isinstance(default, str) or default is None else default.id


def customer_default_payment_method_set(*, customer_id: str, payment_method_id: str) -> None:
    _call(
        _client().v1.customers.update,
        customer_id,
        params={"invoice_settings": {"default_payment_method": payment_method_id}},
    )


def webhook_event_construct(*, payload: bytes, signature: str) -> dict:
    """The verified event as a dict; WebhookSignatureError when forged or malformed."""
    if not settings.STRIPE_WEBHOOK_SECRET:
        raise WebhookSignatureError("STRIPE_WEBHOOK_SECRET is unset: refusing unverifiable events")
    try:
        event = stripe.Webhook.construct_event(payload, signature, settings.STRIPE_WEBHOOK_SECRET)
    except (ValueError, stripe.SignatureVerificationError) as exc:
        raise WebhookSignatureError(str(exc)) from exc
    return event.to_dict()


@dataclass(frozen=True)
class PaymentResult:
    payment_intent_id: str
    # succeeded | requires_action | requires_payment_method | processing | failed (a decline:
    # the customer's) | refused (Stripe refused the request: ours to fix, nothing was charged)
    status: str
    error: str = ""


def payment_key(*, invoice_id: int, attempt: int) -> str:
    """The idempotency key of one payment attempt of an invoice. A retry is a new attempt with
    a new key (Stripe refuses a key reused with other parameters and replays the first answer,
    a decline included, to the same ones); a worker that dies mid-call repeats its own attempt,
    so its key, and Stripe answers what the first call did instead of charging again."""
    return f"invoice-{invoice_id}-payment-{attempt}"


def payment_intent_charge(
    *,
    customer_id: str,
    payment_method_id: str,
    amount_cents: int,
    currency: str,
    invoice_id: int,
    attempt: int = 1,
) -> PaymentResult:
    """Charge a saved card off-session for one attempt at paying an invoice. A decline, or a
    request Stripe refused, is a result, not an exception: the invoice records it and the next
    attempt has a new key. PaymentUnavailable means the outcome is unknown (Stripe unreachable
    or failing on its side): try again with the same attempt, so the same key."""
    try:
        intent = _client().v1.payment_intents.create(
            params={
                "amount": amount_cents,
                "currency": currency,
                "customer": customer_id,
                "payment_method": payment_method_id,
                "off_session": True,
                "confirm": True,
                "metadata": {"invoice_id": str(invoice_id), "attempt": str(attempt)},
            },
            options={"idempotency_key": payment_key(invoice_id=invoice_id, attempt=attempt)},
        )
    except stripe.CardError as exc:
        return PaymentResult("", "failed", exc.user_message or "The card was declined.")
    except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as exc:
        raise PaymentUnavailable("The payment service is unreachable; try again shortly.") from exc
    except stripe.StripeError as exc:  # invalid request, idempotency, authentication: not charged
        reason = exc.user_message or type(exc).__name__
        return PaymentResult("", "refused", f"The payment service refused the charge: {reason}")
    return PaymentResult(intent.id, intent.status)


def payment_authorize(
    *, customer_id: str, payment_method_id: str, amount_cents: int, currency: str, key: str
) -> str:
    """Check that the saved card can pay `amount_cents` now: place a hold off-session and
    release it at once. Raises PaymentError on a decline. `key` makes a retry the same hold."""
    try:
        intent = _client().v1.payment_intents.create(
            params={
                "amount": amount_cents,
                "currency": currency,
                "customer": customer_id,
                "payment_method": payment_method_id,
                "off_session": True,
                "confirm": True,
                "capture_method": "manual",
                "metadata": {"authorization": key},
            },
            options={"idempotency_key": f"{key}-hold"},
        )
    except stripe.CardError as exc:
        raise PaymentError(exc.user_message or "Your card was declined.") from exc
    except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as exc:
        raise PaymentUnavailable("The payment service is unreachable; try again shortly.") from exc
    if intent.status not in ("requires_capture", "canceled"):
        raise PaymentError(f"Your card could not be authorized (it answered {intent.status}).")
    if intent.status == "requires_capture":
        _call(_client().v1.payment_intents.cancel, intent.id)
    return intent.id
