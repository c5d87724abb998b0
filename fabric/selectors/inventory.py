"""Reads of the inventory. Operators see everything; a tenant sees what is allocated to it."""

import ipaddress

from django.db.models import Count, F, Max, Q, QuerySet

from fabric import models as m
from portal.models import Membership

# How each kind reaches the organization it is allocated to; kinds absent are operator-only.
TENANT_PATHS: dict[type, str] = {
    m.Node: "organization",
    m.GPU: "node__organization",
    m.NetworkInterface: "node__organization",
    m.IPAddress: "organization",
    m.NumberAllocation: "organization",
    m.FirewallPolicy: "organization",
    m.FirewallRule: "policy__organization",
}


def inventory_for(queryset: QuerySet, *, user, membership: Membership | None) -> QuerySet:
    if user.is_staff:
        return queryset
    path = TENANT_PATHS.get(queryset.model)
    if path is None or membership is None:
        return queryset.none()
    return queryset.filter(**{path: membership.organization_id})


def fleet_summary() -> list[dict]:
    """GPUs by site, model and node state: one grouped query."""
    return list(
        m.GPU.objects.values("node__site__name", "model", "node__state")
        .annotate(gpus=Count("pk"), nodes=Count("node", distinct=True))
        .order_by("node__site__name", "model", "node__state")
    )


def node_detail(node_id: int) -> m.Node:
    return (
        m.Node.objects.select_related("site", "rack", "rack__pod", "organization")
        .prefetch_related(
            "gpus",
            "interfaces__cable_end__cable__ends__port__switch",
            "interfaces__nearest_gpu",
            "events",
            "drifts",
        )
        .get(pk=node_id)
    )


def node_list(*, site: str = "", state: str = "", gpu_model: str = "", search: str = ""):
    nodes = m.Node.objects.select_related("site", "rack", "organization").annotate(
        gpu_count=Count("gpus")
    )
    if site:
        nodes = nodes.filter(site__name=site)
    if state:
        nodes = nodes.filter(state=state)
    if gpu_model:
        nodes = nodes.filter(gpu_model=gpu_model)
    if search:
        nodes = nodes.filter(
            Q(name__icontains=search)
            | Q(serial__icontains=search)
            | Q(interfaces__mac=search.lower())
            | Q(gpus__uuid=search)
        ).distinct()
    return nodes.order_by("name")


def drift_list_open() -> QuerySet[m.Drift]:
    """Open drift findings (operator data about the fleet: no organization scope)."""
    return (
        m.Drift.objects.filter(resolved_at=None)
        .select_related("node", "node__site")
        .order_by("node__name", "kind", "subject")
    )


def allocation_nodes(*, allocation_id: int) -> list[m.Node]:
    """The servers an allocation holds now."""
    return list(
        m.Node.objects.filter(bookings__allocation_id=allocation_id)
        .select_related("site")
        .distinct()
        .order_by("name")
    )


def attached_interfaces(*, network: m.TenantNetwork, nodes: list[m.Node]) -> list:
    """The nodes' NICs that are on `network` now."""
    attached = m.NetworkAttachment.objects.filter(
        network=network, state="attached", interface__node__in=nodes
    ).values_list("interface_id", flat=True)
    return list(m.NetworkInterface.objects.filter(pk__in=attached).select_related("node"))


def unattached_interfaces(*, network: m.TenantNetwork, nodes: list[m.Node]) -> list:
    """The nodes' Ethernet NICs that are cabled to a switch and not yet on `network` (a NIC
    whose push never finished counts as not yet on it)."""
    live = m.NetworkAttachment.objects.filter(network=network, state="attached").values_list(
        "interface_id", flat=True
    )
    return list(
        m.NetworkInterface.objects.filter(
            node__in=nodes, kind=m.NetworkInterface.Kind.ETHERNET, cable_end__isnull=False
        )
        .exclude(pk__in=live)
        .select_related("node")
        .order_by("node__name", "name")
    )


def node_addresses(*, network: m.TenantNetwork) -> dict[int, str]:
    """Each attached node's first address on the network."""
    addresses: dict[int, str] = {}
    for node_id, address in (
        m.NetworkAttachment.objects.filter(network=network, state="attached")
        .order_by("pk")
        .values_list("interface__node_id", "address")
    ):
        if address is not None:
            addresses.setdefault(node_id, str(address).split("/")[0])
    return addresses


def node_network_interfaces(*, network: m.TenantNetwork, node_id: int) -> list[dict]:
    """Each of the node's NICs attached to `network`: its name, MAC, address with the
    segment's prefix length, and the segment's gateway."""
    found = []
    for attachment in (
        m.NetworkAttachment.objects.filter(
            network=network, state=m.NetworkAttachment.State.ATTACHED, interface__node_id=node_id
        )
        .exclude(address=None)
        .select_related("interface", "segment")
        .order_by("pk")
    ):
        prefix = ipaddress.ip_network(attachment.segment.prefix)
        address = str(attachment.address).split("/")[0]
        found.append(
            {
                "name": attachment.interface.name,
                "mac": attachment.interface.mac,
                "address": f"{address}/{prefix.prefixlen}",
                "gateway": str(attachment.segment.gateway).split("/")[0],
            }
        )
    return found


def bare_metal_models() -> list[str]:
    """GPU models with servers whose power the platform controls (a BMC on record)."""
    return list(
        m.Node.objects.filter(bmc__isnull=False)
        .exclude(gpu_model="")
        .order_by("gpu_model")
        .values_list("gpu_model", flat=True)
        .distinct()
    )


def bare_metal_specs() -> list[dict]:
    """What each server sold as bare metal (a BMC on record) is: one row per configuration
    (GPU model, vendor and model, GPUs and their memory, CPU, memory, NICs by kind and speed)
    with how many servers have it. Two queries at any fleet size."""
    nodes = (
        m.Node.objects.filter(bmc__isnull=False)
        .exclude(gpu_model="")
        .values("pk", "gpu_model", "vendor", "model", "cpu_model", "cpu_cores", "memory_gb")
        .annotate(gpu_count=Count("gpus"), gpu_memory_mb=Max("gpus__memory_mb"))
        .order_by()
    )
    nics: dict[int, list[tuple[str, int, int]]] = {}
    for row in (
        m.NetworkInterface.objects.filter(node__bmc__isnull=False)
        .values("node_id", "kind", "speed_gbps")
        .annotate(count=Count("pk"))
        .order_by("node_id", "kind", "-speed_gbps")
    ):
        nics.setdefault(row["node_id"], []).append((row["kind"], row["speed_gbps"], row["count"]))
    kinds = dict(m.NetworkInterface.Kind.choices)
    specs: dict[tuple, dict] = {}
    for node in nodes:
        network = tuple(nics.get(node["pk"], ()))
        key = (*(node[f] for f in node if f != "pk"), network)
        if key not in specs:
            specs[key] = {
                **{f: v for f, v in node.items() if f not in ("pk", "gpu_count")},
                "gpus": node["gpu_count"],
                "gpu_memory_gb": round((node["gpu_memory_mb"] or 0) / 1024),
                "network": [
                    {"kind": kinds.get(kind, kind), "speed_gbps": speed, "count": count}
                    for kind, speed, count in network
                ],
                "servers": 0,
            }
        specs[key]["servers"] += 1
    return sorted(specs.values(), key=lambda s: (s["gpu_model"], s["vendor"], s["model"]))


def bare_metal_sites() -> list[dict]:
    """Per site and GPU model, how many servers sold as bare metal (a BMC on record) it has."""
    return list(
        m.Node.objects.filter(bmc__isnull=False)
        .exclude(gpu_model="")
        .values("gpu_model", site_name=F("site__name"))
        .annotate(servers=Count("pk"))
        .order_by("site_name", "gpu_model")
    )
