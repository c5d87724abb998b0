"""Order pages: place an order (quote first, then confirm), follow it live, terminate it; and
the per-node metadata a booting server fetches and the phone-home it posts its host keys to."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from catalog.forms import BareMetalOrderForm, NotebookOrderForm
from catalog.metadata import (
    PHONE_HOME,
    meta_data,
    metadata_node,
    network_config,
    order_phoned_home,
    phone_home_record,
    user_data,
)
from catalog.models import Product
from catalog.selectors.orders import order_get_visible, order_list, order_snapshot
from catalog.selectors.storefront import (
    notebook_price_list,
    order_quote,
    purchase_blockers,
    storefront_availability,
)
from catalog.services.notebooks import notebook_restart
from catalog.services.orders import order_nudge, order_place, order_terminate
from catalog.services.ray import (
    DashboardUnavailable,
    ray_dashboard_get,
    ray_worker_add,
    ray_worker_remove,
)
from fabric.choices import AllocationTopology
from fabric.selectors.inventory import bare_metal_models, bare_metal_sites, bare_metal_specs
from portal.decorators import membership_required
from portal.permissions import Permission, has_permission
from portal.selectors import ssh_key_list
from portal.services.audit import Actor
from portal.services.ssh_keys import ssh_key_add
from portal.views.forms_util import apply_validation_error


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
    if product.kind not in (Product.Kind.BARE_METAL, Product.Kind.RAY):
        raise Http404("This product is not ordered here yet.")
    availability = storefront_availability()
    offered = bare_metal_models()  # a model with nothing free may still be ordered: it queues
    availability = [row for row in availability if row["gpu_model"] in offered]
    servers = bare_metal_specs()
    form = _bare_metal_form(request, request.POST or None, offered)
    quote = standing = None
    blockers = purchase_blockers(user=request.user, membership=request.membership)
    if request.method == "POST" and form.is_valid():
        try:
            priced = order_quote(product=product, spec=form.spec())
            if form.new_key_to_save():
                form = _save_new_key(request, form, offered)
            quote, standing = priced.hourly_price, priced.standing
            if request.POST.get("confirm") == str(quote):
                return _place(request, product, priced.spec)
        except ValidationError as error:
            apply_validation_error(form, error)
            quote = standing = None
        except PermissionDenied as denied:
            messages.error(request, str(denied))
    return render(
        request,
        "catalog/order_new.html",
        {
            "product": product,
            "form": form,
            "quote": quote,
            "standing": standing,
            "blockers": blockers,
            "availability": availability,
            "servers": servers,
        },
    )


def _bare_metal_form(request, data, offered: list[str]) -> BareMetalOrderForm:
    """The order form with the sites that have bare-metal servers (and which models, how
    many) and the orderer's SSH keys."""
    by_site: dict[str, list[str]] = {}
    for row in bare_metal_sites():
        by_site.setdefault(row["site_name"], []).append(f"{row['servers']} × {row['gpu_model']}")
    return BareMetalOrderForm(
        data,
        gpu_models=offered,
        topologies=AllocationTopology.choices,
        sites=[(site, f"{site} ({', '.join(models)})") for site, models in by_site.items()],
        keys=[
            (key.fingerprint, f"{key.name} ({key.fingerprint})")
            for key in ssh_key_list(user=request.user)
        ],
    )


def _save_new_key(request, form: BareMetalOrderForm, offered: list[str]) -> BareMetalOrderForm:
    """Save the key pasted on the form (the order validated) through the SSH-key service and
    answer with the form as it now stands: that key among the orderer's, chosen."""
    try:
        key = ssh_key_add(
            user=request.user,
            name=form.cleaned_data["new_key_name"],
            public_key=form.cleaned_data["new_key"],
            actor=Actor.from_request(request),
        )
    except ValidationError as error:
        raise ValidationError({"new_key": error.message_dict["public_key"]}) from error
    messages.success(request, f"Saved your key {key.name} ({key.fingerprint}) for these servers.")
    data = request.POST.copy()
    data.setlist("ssh_keys", [*form.cleaned_data["ssh_keys"], key.fingerprint])
    data["new_key"] = data["new_key_name"] = ""
    saved = _bare_metal_form(request, data, offered)
    saved.is_valid()
    return saved


def _place(request, product, spec, suffix=""):
    order = order_place(
        membership=request.membership,
        product=product,
        spec=spec,
        actor=Actor.from_request(request),
    )
    return redirect(reverse("orders:detail", args=[order.pk]) + suffix)


def _notebook_new(request, product):
    """One click: the price is on each choice; launching opens JupyterLab when it is up."""
    choices = [(p.profile, f"{p.label} — ${p.hourly_price}/h") for p in notebook_price_list()]
    form = NotebookOrderForm(request.POST or None, profiles=choices)
    blockers = purchase_blockers(user=request.user, membership=request.membership)
    if request.method == "POST" and form.is_valid():
        try:
            return _place(request, product, {"profile": form.cleaned_data["profile"]}, "?open=1")
        except ValidationError as error:
            apply_validation_error(form, error)
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


@login_required
@require_POST
def ray_workers_view(request, order_id: int, change: str):
    """Add a worker to a running Ray cluster, or remove its last one."""
    if change == "add":
        act, done = ray_worker_add, "Adding a worker: its server boots and joins the cluster."
    else:
        act, done = ray_worker_remove, "Removing the last worker; its server is given back."
    return _order_action(request, order_id, act, done, "Your role cannot change this cluster.")


@login_required
@require_GET
def ray_dashboard(request, order_id: str, path: str):
    """The Ray dashboard of the order's cluster, through the portal (catalog.services.ray)."""
    order = order_get_visible(
        user=request.user, membership=request.membership, order_id=int(order_id)
    )
    try:
        page = ray_dashboard_get(order=order, path=path, query=request.GET.dict())
    except DashboardUnavailable as exc:
        return HttpResponse(str(exc), status=503, content_type="text/plain; charset=utf-8")
    response = HttpResponse(page.body, status=page.status, content_type=page.content_type)
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_GET
def order_snapshot_view(request, order_id: int):
    """The order page's fallback when its socket is quiet: the snapshot, read from the
    database (no Redis on this path), so the page shows the truth when live events stop."""
    order = order_get_visible(user=request.user, membership=request.membership, order_id=order_id)
    response = JsonResponse(order_snapshot(order))
    response["Cache-Control"] = "no-store"
    return response


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
    return _order_action(
        request,
        order_id,
        notebook_restart,
        "Restarting JupyterLab; your files are kept.",
        "Your role cannot restart this notebook.",
    )


def _order_action(request, order_id: int, act, done: str, refused: str):
    """An action on an order, for whoever may end it: `act(order=, actor=)`, then back to the
    order page saying what happens, or why not."""
    order = order_get_visible(user=request.user, membership=request.membership, order_id=order_id)
    if not _may_end(request, order):
        raise PermissionDenied(refused)
    try:
        act(order=order, actor=Actor.from_request(request))
        messages.info(request, done)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect("orders:detail", order_id=order.pk)


@require_GET
def metadata(request, token: str, document: str):
    node = metadata_node(token)
    if node is None:
        raise Http404("No such node.")
    render = {"meta-data": meta_data, "user-data": user_data, "network-config": network_config}
    body = render[document](node)
    return HttpResponse(body, content_type="text/plain; charset=utf-8")


@csrf_exempt  # a booting server has no session: the signed URL is its credential
@require_POST
def phone_home(request, token: str):
    """cloud-init's phone_home: the server posts its sshd host keys and instance id."""
    node = metadata_node(token, PHONE_HOME)
    if node is None:
        raise Http404("No such node.")
    try:
        phone_home_record(node, request.POST)
    except ValidationError as error:
        return HttpResponse(" ".join(error.messages) + "\n", status=400, content_type="text/plain")
    if order_phoned_home(order_id=node.order_id):  # the ready check need not wait for its next poll
        order_nudge(order_id=node.order_id)
    return HttpResponse("recorded\n", content_type="text/plain; charset=utf-8")
