"""Operator inventory pages, one list per URL namespace (portal/urls.py mounts them)."""

from django.urls import path, re_path

from fabric.views import inventory, provisioning, spreadsheets

inventory_patterns = [
    path("", inventory.fleet, name="fleet"),
    path("nodes/", inventory.node_list, name="node_list"),
    path("nodes/<int:node_id>/", inventory.node_detail, name="node_detail"),
    path("racks/", inventory.rack_list, name="rack_list"),
    path("racks/<int:rack_id>/", inventory.rack_elevation, name="rack_elevation"),
    path("switches/", inventory.switch_list, name="switch_list"),
    path("drift/", inventory.drift_list, name="drift_list"),
    path("history/<str:kind>/<int:object_id>/", inventory.history, name="history"),
]

spreadsheet_patterns = [
    path("export.xlsx", spreadsheets.export_xlsx, name="export_xlsx"),
    path("export.zip", spreadsheets.export_zip, name="export_zip"),
    path("export/<str:kind>.csv", spreadsheets.export_csv, name="export_csv"),
    path("template.xlsx", spreadsheets.template_xlsx, name="template"),
    path("import/", spreadsheets.import_page, name="import"),
]

# Fetched by servers booting on the provisioning network (docs/networks.md).
provisioning_patterns = [
    path("ipxe/", provisioning.ipxe_chain, name="ipxe_chain"),
    re_path(r"^ipxe/(?P<mac>[0-9A-Fa-f:.-]{12,17})$", provisioning.ipxe_script, name="ipxe"),
    re_path(r"^cleaned/(?P<token>[A-Za-z0-9_.:-]{1,400})/$", provisioning.cleaned, name="cleaned"),
]
