"""Billing's pages, one module per area: cards (and the overview), invoices, the operators'
revenue report, and Stripe's webhook endpoint."""
