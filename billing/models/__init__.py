from billing.models.cards import Card, StripeCustomer
from billing.models.credits import CreditGrant
from billing.models.webhooks import WebhookEvent

__all__ = ["Card", "CreditGrant", "StripeCustomer", "WebhookEvent"]
