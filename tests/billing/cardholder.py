"""What Stripe.js does in a customer's browser, done from Python against localstripe: create a
PaymentMethod from a card number and confirm a SetupIntent with it. (The browser tests drive the
real Stripe.js mock; these let service tests run without a browser.)"""

import stripe
from django.conf import settings

GOOD = "4242424242424242"
DECLINED = "4000000000000002"


def _client() -> stripe.StripeClient:
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY, base_addresses={"api": settings.STRIPE_API_BASE}
    )


def setup_intent_id(client_secret: str) -> str:
    return client_secret.split("_secret_")[0]


def confirm(client_secret: str, number: str = GOOD) -> str:
    """Confirm the SetupIntent with a card; returns the intent id (raises CardError on decline)."""
    client = _client()
    pm = client.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": number, "exp_month": 12, "exp_year": 2031, "cvc": "123"},
        }
    )
    intent_id = setup_intent_id(client_secret)
    client.v1.setup_intents.confirm(intent_id, params={"payment_method": pm.id})
    return intent_id


def customer(customer_id: str):
    return _client().v1.customers.retrieve(customer_id)


def payment_method(payment_method_id: str):
    return _client().v1.payment_methods.retrieve(payment_method_id)


def save_card(membership, number: str = GOOD):
    """The whole card flow for `membership`: start, confirm as the browser would, complete."""
    from billing.services import cards
    from portal.services.audit import Actor

    secret = cards.card_setup_start(membership=membership)
    return cards.card_setup_complete(
        organization=membership.organization,
        setup_intent_id=confirm(secret, number),
        actor=Actor(user=membership.user),
    )
