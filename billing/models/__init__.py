from billing.models.budgets import Budget
from billing.models.cards import Card, StripeCustomer
from billing.models.credits import CreditGrant
from billing.models.invoices import CreditSpend, Invoice, InvoiceLine, Suspension
from billing.models.ledger import Rate, UsageEvent
from billing.models.webhooks import WebhookEvent

__all__ = [
    "Budget",
    "Card",
    "CreditGrant",
    "CreditSpend",
    "Invoice",
    "InvoiceLine",
    "Rate",
    "StripeCustomer",
    "Suspension",
    "UsageEvent",
    "WebhookEvent",
]
