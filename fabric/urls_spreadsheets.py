from django.urls import path

from fabric import views_spreadsheets as views

app_name = "inventory_io"

urlpatterns = [
    path("export.xlsx", views.export_xlsx, name="export_xlsx"),
    path("export.zip", views.export_zip, name="export_zip"),
    path("export/<str:kind>.csv", views.export_csv, name="export_csv"),
    path("template.xlsx", views.template_xlsx, name="template"),
    path("import/", views.import_page, name="import"),
]
