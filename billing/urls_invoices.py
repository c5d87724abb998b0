"""Invoice routes. Tenant pages go under billing/ (namespace "invoices"); the operators' revenue
report is `operator_urlpatterns`, mounted by portal/urls.py under its own namespace."""

from django.urls import path

from billing import views_invoices as views

app_name = "invoices"

urlpatterns = [
    path("invoices/", views.invoice_list, name="list"),
    path("invoices.csv", views.invoice_list_csv, name="list_csv"),
    path("invoices/<int:invoice_id>/", views.invoice_detail, name="detail"),
    path("invoices/<int:invoice_id>.csv", views.invoice_csv, name="csv"),
]

operator_urlpatterns = [
    path("", views.revenue, name="revenue"),
]
