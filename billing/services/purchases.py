"""Whether an organization may start spending: the gate before an order."""

from decimal import Decimal

from billing import payments
from billing.models import StripeCustomer
from billing.selectors import card_default, credit_balance
from portal.models import Organization


def purchase_authorize(*, organization: Organization, amount: Decimal, key: str) -> str:
    """May the organization start spending `amount` (an hour of what it orders)? Prepaid credit
    that covers it is enough; otherwise the default card must accept a hold for it, released at
    once. Returns how it was authorized; raises payments.PaymentError (a decline: the message is
    for the customer) or payments.PaymentUnavailable (try again)."""
    if credit_balance(organization=organization) >= amount:
        return "covered by prepaid credit"
    card = card_default(organization=organization)
    customer = StripeCustomer.objects.filter(organization=organization).first()
    if card is None or customer is None:
        raise payments.PaymentError("Add a card or get prepaid credit to order.")
    payments.payment_authorize(
        customer_id=customer.stripe_id,
        payment_method_id=card.stripe_payment_method_id,
        amount_cents=max(int(amount * 100), 50),
        currency="usd",
        key=key,
    )
    return f"{card.brand} ending {card.last4} authorized for ${amount}"
