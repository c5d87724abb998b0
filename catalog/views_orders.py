"""Order pages: place an order (quote first, then confirm), follow it live, terminate it; and
the per-node metadata a booting server fetches."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from catalog.forms import BareMetalOrderForm, NotebookOrderForm
from catalog.metadata import meta_data, metadata_node, user_data
from catalog.models import Product
from catalog.offerings import offering_for
from catalog.selectors import purchase_blockers, storefront_availability
from catalog.selectors_orders import order_get_visible, order_list, order_snapshot
from catalog.services.notebooks import notebook_restart
from catalog.services.orders import order_place, order_terminate
from fabric.models import Allocation
from fabric.selectors import bare_metal_models
from portal.decorators import membership_required
from portal.permissions import Permission, has_permission
from portal.services.audit import Actor


@membership_required(Permission.VIEW)
def order_index(request):
    return render(
        request,
        "catalog/order_list.html",
        {"orders": order_list(membership=request.membership)[:100]},
    )


@membership_required(Permission.ORDER)
def order_new(request, slug: str):
    product = get_object_or_404(Product, slug=slug, is_active=True)
    if product.kind == Product.Kind.NOTEBOOK:
        return _notebook_new(request, product)
    if product.kind != Product.Kind.BARE_METAL:
        raise Http404("This product is not ordered here yet.")
    availability = storefront_availability()
    offered = bare_metal_models()  # a model with nothing free may still be ordered: it queues
    availability = [row for row in availability if row["gpu_model"] in offered]
    form = BareMetalOrderForm(
        request.POST or None,
        gpu_models=offered,
        topologies=Allocation.Topology.choices,
    )
    quote = None
    blockers = purchase_blockers(user=request.user, membership=request.membership)
    if request.method == "POST" and form.is_valid():
        offering = offering_for(product.kind)
        try:
            spec = offering.clean_spec(form.cleaned_data)
            quote = offering.hourly_price(spec)
            if request.POST.get("confirm") == str(quote):
                return _place(request, product, spec)
        except ValidationError as error:
            _form_errors(form, error)
            quote = None
        except PermissionDenied as denied:
            messages.error(request, str(denied))
    return render(
        request,
        "catalog/order_new.html",
        {
            "product": product, "form": form, "quote": quote, "blockers": blockers,
            "availability": availability,
        },
    )  # fmt: skip


def _place(request, product, spec, suffix=""):
    order = order_place(
        membership=request.membership, product=product, spec=spec,
        actor=Actor.from_request(request),
    )  # fmt: skip
    return redirect(reverse("orders:detail", args=[order.pk]) + suffix)


def _form_errors(form, error: ValidationError) -> None:
    fields = error.message_dict if hasattr(error, "error_dict") else {None: error.messages}
    for field, errors in fields.items():
        form.add_error(field if field in form.fields else None, errors)


def _notebook_new(request, product):
    """One click: the price is on each choice; launching opens JupyterLab when it is up."""
    offering = offering_for(product.kind)
    choices = [
        (key, f"{p['label']} — ${offering.hourly_price(offering.clean_spec({'profile': key}))}/h")
        for key, p in settings.NOTEBOOK_PROFILES.items()
    ]
    form = NotebookOrderForm(request.POST or None, profiles=choices)
    blockers = purchase_blockers(user=request.user, membership=request.membership)
    if request.method == "POST" and form.is_valid():
        try:
            return _place(request, product, {"profile": form.cleaned_data["profile"]}, "?open=1")
        except ValidationError as error:
            _form_errors(form, error)
        except PermissionDenied as denied:
            messages.error(request, str(denied))
    return render(
        request,
        "catalog/notebook_new.html",
        {"product": product, "form": form, "blockers": blockers},
    )


@login_required
def order_detail(request, order_id: int):
    order = order_get_visible(user=request.user, membership=request.membership, order_id=order_id)
    return render(
        request,
        "catalog/order_detail.html",
        {
            "order": order,
            "snapshot": order_snapshot(order),
            "can_order": _may_end(request, order),
        },
    )


def _may_end(request, order) -> bool:
    """Members whose role orders end their organization's orders; anyone ends their own."""
    own = order.created_by_id == request.user.pk
    member = request.membership is not None and (
        request.membership.organization_id == order.organization_id
        and has_permission(request.membership, Permission.ORDER)
    )
    return own or member


@login_required
@require_POST
def order_terminate_view(request, order_id: int):
    order = order_get_visible(user=request.user, membership=request.membership, order_id=order_id)
    if not _may_end(request, order):
        raise PermissionDenied("Your role cannot stop this order.")
    order_terminate(order=order, actor=Actor.from_request(request))
    messages.info(request, f"{order} is being terminated.")
    return redirect("orders:detail", order_id=order.pk)


@login_required
@require_POST
def notebook_restart_view(request, order_id: int):
    order = order_get_visible(user=request.user, membership=request.membership, order_id=order_id)
    if not _may_end(request, order):
        raise PermissionDenied("Your role cannot restart this notebook.")
    try:
        notebook_restart(order=order, actor=Actor.from_request(request))
        messages.info(request, "Restarting JupyterLab; your files are kept.")
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect("orders:detail", order_id=order.pk)


@require_GET
def metadata(request, token: str, document: str):
    node = metadata_node(token)
    if node is None:
        raise Http404("No such node.")
    body = meta_data(node) if document == "meta-data" else user_data(node)
    return HttpResponse(body, content_type="text/plain; charset=utf-8")
