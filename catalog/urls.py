"""The catalog's pages, one list per URL namespace (portal/urls.py mounts each)."""

from django.urls import path, re_path

from catalog.views import capacity, inference, notebooks, orders

capacity_patterns = [path("", capacity.capacity, name="capacity")]

order_patterns = [
    path("", orders.order_index, name="list"),
    path("new/<slug:slug>/", orders.order_new, name="new"),
    path("<int:order_id>/", orders.order_detail, name="detail"),
    path("<int:order_id>/snapshot/", orders.order_snapshot_view, name="snapshot"),
    path("<int:order_id>/terminate/", orders.order_terminate_view, name="terminate"),
    path("<int:order_id>/restart/", orders.notebook_restart_view, name="restart"),
    path(
        "<int:order_id>/workers/add/", orders.ray_workers_view, {"change": "add"}, name="add-worker"
    ),
    path(
        "<int:order_id>/workers/remove/",
        orders.ray_workers_view,
        {"change": "remove"},
        name="remove-worker",
    ),
    re_path(r"^(?P<order_id>[0-9]+)/ray/(?P<path>.*)$", orders.ray_dashboard, name="ray-dashboard"),
]

inference_patterns = [
    path("", inference.inference, name="index"),
    path("keys/<int:key_id>/revoke/", inference.inference_key_revoke_view, name="revoke"),
]

metadata_patterns = [
    re_path(
        r"^(?P<token>[0-9]+-[0-9a-f]+)/(?P<document>meta-data|user-data|network-config)$",
        orders.metadata,
        name="metadata",
    ),
    re_path(r"^(?P<token>[0-9]+-[0-9a-f]+)/phone-home$", orders.phone_home, name="phone-home"),
]

# JupyterHub's sign-in (OAuth user info) and its admission check, at fixed top-level paths.
hub_patterns = [
    path("oauth/userinfo/", notebooks.userinfo, name="oauth-userinfo"),
    path("api/v1/notebooks/admission/", notebooks.admission, name="notebook-admission"),
]
