from django.urls import path

from billing import views

app_name = "billing"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("card/", views.card_add, name="card_add"),
    path("card/complete/", views.card_complete, name="card_complete"),
    path("card/declined/", views.card_declined, name="card_declined"),
    path("cards/<int:card_id>/remove/", views.card_remove, name="card_remove"),
    path("stripe/webhook/", views.stripe_webhook, name="stripe_webhook"),
]
