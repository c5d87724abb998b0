from django.urls import path

from fabric import views

app_name = "fabric"

urlpatterns = [
    path("", views.fleet, name="fleet"),
    path("nodes/", views.node_list, name="node_list"),
    path("nodes/<int:node_id>/", views.node_detail, name="node_detail"),
    path("racks/", views.rack_list, name="rack_list"),
    path("racks/<int:rack_id>/", views.rack_elevation, name="rack_elevation"),
    path("switches/", views.switch_list, name="switch_list"),
    path("drift/", views.drift_list, name="drift_list"),
    path("history/<str:kind>/<int:object_id>/", views.history, name="history"),
]
