"""Operators' spreadsheet pages: export, blank template, and import with a dry run."""

from __future__ import annotations

from django import forms
from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from fabric.spreadsheets import SHEETS, SpreadsheetError, exporter, inventory_import, read_upload
from portal.services.audit import Actor

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_UPLOAD = 50 * 1024 * 1024


class ImportForm(forms.Form):
    file = forms.FileField(help_text="an XLSX workbook, a CSV file or a zip of CSV files")
    kind = forms.ChoiceField(
        choices=[("", "from the file name or headers")] + [(k, k) for k in SHEETS],
        required=False,
        help_text="for a CSV file or a one-sheet workbook",
    )
    dry_run = forms.BooleanField(required=False, initial=True, label="Dry run (change nothing)")


def _download(content: bytes, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@staff_member_required
@require_GET
def export_xlsx(request: HttpRequest) -> HttpResponse:
    return _download(exporter.xlsx_bytes(), XLSX, "inventory.xlsx")


@staff_member_required
@require_GET
def export_csv(request: HttpRequest, kind: str) -> HttpResponse:
    if kind not in SHEETS:
        raise Http404("no such kind")
    return _download(exporter.csv_bytes(kind), "text/csv; charset=utf-8", f"{kind}.csv")


@staff_member_required
@require_GET
def export_zip(request: HttpRequest) -> HttpResponse:
    return _download(exporter.csv_zip_bytes(), "application/zip", "inventory-csv.zip")


@staff_member_required
@require_GET
def template_xlsx(request: HttpRequest) -> HttpResponse:
    return _download(exporter.template_bytes(), XLSX, "inventory-template.xlsx")


@staff_member_required
def import_page(request: HttpRequest) -> HttpResponse:
    report, status = None, 200
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        if upload.size > MAX_UPLOAD:
            form.add_error("file", "The file is larger than 50 MB.")
        else:
            try:
                sheets = read_upload(
                    upload.read(), filename=upload.name, kind=form.cleaned_data["kind"] or None
                )
            except SpreadsheetError as exc:
                form.add_error("file", str(exc))
            else:
                report = inventory_import(
                    sheets=sheets,
                    actor=Actor.from_request(request),
                    dry_run=form.cleaned_data["dry_run"],
                )
    if request.method == "POST" and (report is None or not report.ok):
        status = 400
    context = {"form": form, "report": report, "kinds": SHEETS}
    return render(request, "fabric/import.html", context, status=status)
