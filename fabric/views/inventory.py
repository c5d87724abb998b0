"""Operator pages: fleet summary, node list and detail, rack elevation, switches, drift and the
change history of any inventory object. Each runs a fixed number of queries at any fleet size."""

from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.contenttypes.models import ContentType
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, render

from fabric import models as m
from fabric.selectors import inventory as selectors
from fabric.services.changes import change_history

PAGE_SIZE = 100


@staff_member_required
def fleet(request):
    rows = selectors.fleet_summary()
    states = sorted({r["node__state"] for r in rows})
    table: dict[tuple[str, str], dict[str, int]] = {}
    for r in rows:
        table.setdefault((r["node__site__name"], r["model"]), {})[r["node__state"]] = r["gpus"]
    summary = [
        {
            "site": site,
            "model": model,
            "cells": [by_state.get(s, 0) for s in states],
            "total": sum(by_state.values()),
        }
        for (site, model), by_state in sorted(table.items())
    ]
    return render(
        request,
        "fabric/fleet.html",
        {
            "states": states,
            "summary": summary,
            "total_gpus": sum(r["total"] for r in summary),
            "open_drift": selectors.drift_list_open().count(),
        },
    )


@staff_member_required
def node_list(request):
    filters = {key: request.GET.get(key, "").strip() for key in ("site", "state", "gpu_model", "q")}
    nodes = selectors.node_list(
        site=filters["site"],
        state=filters["state"],
        gpu_model=filters["gpu_model"],
        search=filters["q"],
    )
    page = Paginator(nodes, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "fabric/node_list.html",
        {
            "page": page,
            "filters": filters,
            "sites": m.Site.objects.values_list("name", flat=True),
            "states": m.NodeState.choices,
            "gpu_models": m.Node.objects.order_by().values_list("gpu_model", flat=True).distinct(),
        },
    )


@staff_member_required
def node_detail(request, node_id: int):
    try:
        node = selectors.node_detail(node_id)
    except m.Node.DoesNotExist:
        raise Http404("No such node.") from None
    return render(
        request,
        "fabric/node_detail.html",
        {"node": node, "changes": change_history(node)[:50], "report": node.reports.first()},
    )


@staff_member_required
def rack_list(request):
    racks = m.Rack.objects.select_related("site", "pod").order_by("site__name", "name")
    page = Paginator(racks, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "fabric/rack_list.html", {"page": page})


@staff_member_required
def rack_elevation(request, rack_id: int):
    rack = get_object_or_404(m.Rack.objects.select_related("site", "pod"), pk=rack_id)
    occupants = list(rack.nodes.all()) + list(rack.switches.all())
    by_top = {}
    for item in occupants:
        by_top[item.rack_position + item.rack_units - 1] = item
    units, u = [], rack.u_height
    while u >= 1:
        item = by_top.get(u)
        if item is not None:
            units.append(
                {"u": u, "item": item, "span": item.rack_units, "is_node": isinstance(item, m.Node)}
            )
            u -= item.rack_units
        else:
            units.append({"u": u, "item": None, "span": 1})
            u -= 1
    return render(request, "fabric/rack_elevation.html", {"rack": rack, "units": units})


@staff_member_required
def switch_list(request):
    switches = m.Switch.objects.select_related("site", "pod").order_by("name")
    role = request.GET.get("role", "")
    if role:
        switches = switches.filter(role=role)
    page = Paginator(switches, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "fabric/switch_list.html",
        {"page": page, "role": role, "roles": m.Switch.Role.choices},
    )


@staff_member_required
def drift_list(request):
    page = Paginator(selectors.drift_list_open(), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "fabric/drift_list.html", {"page": page})


@staff_member_required
def history(request, kind: str, object_id: int):
    """The change log of any inventory object, deleted ones included."""
    try:
        content_type = ContentType.objects.get(app_label="fabric", model=kind)
    except ContentType.DoesNotExist:
        raise Http404("No such kind.") from None
    records = m.ChangeRecord.objects.filter(
        content_type=content_type, object_id=object_id
    ).select_related("actor")
    page = Paginator(records, PAGE_SIZE).get_page(request.GET.get("page"))
    if not page.object_list:
        raise Http404("No history for this object.")
    return render(
        request,
        "fabric/history.html",
        {
            "page": page,
            "kind": content_type.model_class()._meta.verbose_name,
            "object_id": object_id,
        },
    )
