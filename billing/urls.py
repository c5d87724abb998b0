"""Billing's pages, one list per URL namespace (portal/urls.py mounts each)."""

from django.urls import path

from billing.views import cards, invoices, revenue, webhooks

billing_patterns = [
    path("", cards.overview, name="overview"),
    path("card/", cards.card_add, name="card_add"),
    path("card/complete/", cards.card_complete, name="card_complete"),
    path("card/declined/", cards.card_declined, name="card_declined"),
    path("cards/<int:card_id>/remove/", cards.card_remove, name="card_remove"),
    path("stripe/webhook/", webhooks.stripe_webhook, name="stripe_webhook"),
]

invoice_patterns = [
    path("invoices/", invoices.invoice_list, name="list"),
    path("invoices.csv", invoices.invoice_list_csv, name="list_csv"),
    path("invoices/<int:invoice_id>/", invoices.invoice_detail, name="detail"),
    path("invoices/<int:invoice_id>.csv", invoices.invoice_csv, name="csv"),
]

revenue_patterns = [
    path("", revenue.revenue, name="revenue"),
]
