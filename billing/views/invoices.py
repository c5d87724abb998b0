"""Invoice pages for a tenant's billing managers: the list, the printable detail and CSV. Reads go
through billing.selectors, scoped to the acting organization; each page runs a fixed number of
queries at any number of invoices."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from billing import reports, selectors
from portal.decorators import membership_required
from portal.permissions import Permission


def _csv_download(text: str, filename: str) -> HttpResponse:
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@membership_required(Permission.MANAGE_BILLING)
@require_GET
def invoice_list(request: HttpRequest) -> HttpResponse:
    organization = request.membership.organization
    return render(
        request,
        "billing/invoice_list.html",
        {"invoices": selectors.invoice_list(organization=organization)},
    )


@membership_required(Permission.MANAGE_BILLING)
@require_GET
def invoice_list_csv(request: HttpRequest) -> HttpResponse:
    organization = request.membership.organization
    invoices = selectors.invoice_list_with_lines(organization=organization)
    return _csv_download(reports.invoice_csv(invoices), f"invoices-{organization.slug}.csv")


@membership_required(Permission.MANAGE_BILLING)
@require_GET
def invoice_detail(request: HttpRequest, invoice_id: int) -> HttpResponse:
    invoice = selectors.invoice_get(
        organization=request.membership.organization, invoice_id=invoice_id
    )
    return render(
        request,
        "billing/invoice_detail.html",
        {
            "invoice": invoice,
            "lines": reports.invoice_line_views(invoice),
            "payment_reference": reports.invoice_payment_reference(invoice),
            "seller": reports.seller(),
        },
    )


@membership_required(Permission.MANAGE_BILLING)
@require_GET
def invoice_csv(request: HttpRequest, invoice_id: int) -> HttpResponse:
    invoice = selectors.invoice_get(
        organization=request.membership.organization, invoice_id=invoice_id
    )
    return _csv_download(reports.invoice_csv([invoice]), f"{invoice}.csv")
