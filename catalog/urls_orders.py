from django.urls import path, re_path

from catalog import views_orders as views

app_name = "orders"

urlpatterns = [
    path("", views.order_index, name="list"),
    path("new/<slug:slug>/", views.order_new, name="new"),
    path("<int:order_id>/", views.order_detail, name="detail"),
    path("<int:order_id>/terminate/", views.order_terminate_view, name="terminate"),
    path("<int:order_id>/restart/", views.notebook_restart_view, name="restart"),
]

metadata_urlpatterns = [
    re_path(
        r"^(?P<token>[0-9]+-[0-9a-f]+)/(?P<document>meta-data|user-data)$",
        views.metadata,
        name="metadata",
    ),
]
