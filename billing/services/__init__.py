"""Billing's write path, one module per idea; importers name the module they use.

- `ledger` — recording usage (the one way other apps tell billing what a tenant used)
- `invoicing` — invoices from the ledger, credit spent first, card payments and retries
- `budgets` — budget and prepaid-balance alerts, and the signal that stops work at the limit
- `cards` — the Stripe customer and the card on file
- `credits` — prepaid credit granted by operators
- `purchases` — whether an organization may start spending
- `webhooks` — Stripe's events, stored once and processed on commit
"""
