from django.urls import path

from catalog import views_inference as views

app_name = "inference"

urlpatterns = [
    path("", views.inference, name="index"),
    path("keys/<int:key_id>/revoke/", views.inference_key_revoke_view, name="revoke"),
]
