"""Tenant networks: create (numbers and prefixes from the site's pools), attach and detach
nodes' NICs (a plan pushed to the switches), delete (everything back to the pools)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from fabric.bastion import bastion_tenant_address
from fabric.models import (
    NetworkAttachment,
    NetworkInterface,
    NetworkSegment,
    Node,
    NumberAllocation,
    NumberPool,
    Prefix,
    Site,
    TenantNetwork,
)
from fabric.networks import plan as planner
from fabric.networks.push import push
from fabric.services.changes import inventory_delete
from fabric.services.ipam import number_allocate
from fabric.states import network_transition
from portal.models import Organization
from portal.services.audit import Actor
from portal.services.ssh_keys import ssh_key_parse

SEGMENT_PREFIX = 24
ACCESS_PREFIX = 28


def _pool(site: Site, kind: str) -> NumberPool:
    pool = NumberPool.objects.filter(site=site, kind=kind).order_by("pk").first()
    if pool is None:
        raise ValidationError(f"{site.name} has no {kind} pool.")
    return pool


def _free_subnet(site: Site, length: int) -> ipaddress.IPv4Network:
    """A free /`length` inside the site's tenant prefixes, after those already handed out."""
    used = [
        *NetworkSegment.objects.filter(network__site=site, network__state="active").values_list(
            "prefix", flat=True
        ),
        *TenantNetwork.objects.filter(site=site, state="active")
        .exclude(access_prefix=None)
        .values_list("access_prefix", flat=True),
    ]
    for supernet in Prefix.objects.filter(site=site, role=Prefix.Role.TENANT).order_by("pk"):
        for candidate in ipaddress.ip_network(supernet.prefix).subnets(new_prefix=length):
            if not any(candidate.overlaps(ipaddress.ip_network(u)) for u in used):
                return candidate
    raise ValidationError(f"{site.name} has no free /{length} left in its tenant prefixes.")


@transaction.atomic
def network_create(
    *, organization: Organization, site: Site, label: str, actor: Actor
) -> TenantNetwork:
    """A network with one segment; numbers and prefixes come from the site's pools."""

    def number(kind: str) -> NumberAllocation:
        return number_allocate(
            pool=_pool(site, kind),
            actor=actor,
            organization=organization,
            purpose=f"network of organization {organization.pk}",
        )

    network = TenantNetwork.objects.create(
        organization=organization,
        site=site,
        label=label.strip()[:80] or "network",
        access_prefix=_free_subnet(site, ACCESS_PREFIX),
        l3vni=number("vni"),
        pkey=number("pkey"),
    )
    prefix = _free_subnet(site, SEGMENT_PREFIX)
    NetworkSegment.objects.create(
        network=network,
        vlan=number("vlan"),
        l2vni=number("vni"),
        prefix=prefix,
        gateway=next(prefix.hosts()),
    )
    return network


def _port_of(interface: NetworkInterface):
    end = getattr(interface, "cable_end", None)
    far = end.cable.ends.exclude(pk=end.pk).select_related("port__switch").first() if end else None
    if far is None or far.port is None:
        raise ValidationError(f"{interface} is not cabled to a switch port.")
    return far.port


def _services_port(site: Site):
    """The switch port of the site's services host (the first by name), or None where the
    site has none: its networks then get no access trunk, and their jump hosts no way in."""
    nic = (
        NetworkInterface.objects.filter(
            node__site=site,
            node__role=Node.Role.SERVICES,
            kind=NetworkInterface.Kind.ETHERNET,
            cable_end__isnull=False,
        )
        .select_related("cable_end")
        .order_by("node__name", "name")
        .first()
    )
    return _port_of(nic) if nic is not None else None


def _access_switch(network: TenantNetwork):
    return network.access_port.switch if network.access_port_id is not None else None


def _live(network: TenantNetwork):
    return list(
        network.attachments.filter(state=NetworkAttachment.State.ATTACHED).select_related(
            "port__switch", "segment", "interface__node"
        )
    )


def network_attach(
    *,
    network: TenantNetwork,
    interfaces: list[NetworkInterface],
    actor: Actor,
    dry_run: bool = False,
):
    """Put NICs of the tenant's nodes on the network's segment. Returns the pushes (the plan,
    for a dry run). On any switch failure everything is undone and PushFailed raised."""
    segment = network.segments.order_by("pk").first()
    # A NIC left pending by a push that never finished (a worker killed mid-push) is pushed
    # again: the commands are idempotent on the switches.
    unfinished = {
        a.interface_id: a for a in network.attachments.filter(state=NetworkAttachment.State.PENDING)
    }
    adding = []
    for interface in interfaces:
        if interface.node.organization_id != network.organization_id:
            raise PermissionDenied(f"{interface.node.name} is not allocated to this organization.")
        if interface.kind != NetworkInterface.Kind.ETHERNET:
            raise ValidationError(f"{interface} is InfiniBand: it joins the partition, not a VLAN.")
        adding.append(
            unfinished.get(interface.pk)
            or NetworkAttachment(
                network=network, segment=segment, interface=interface, port=_port_of(interface)
            )
        )
    live = _live(network)
    if not live and network.access_port_id is None:
        network.access_port = _services_port(network.site)
        if not dry_run:
            TenantNetwork.objects.filter(pk=network.pk).update(access_port=network.access_port)
    taken = {a.address for a in [*live, *unfinished.values()]}
    taken |= {segment.gateway, bastion_tenant_address(segment)}
    free = (h for h in ipaddress.ip_network(segment.prefix).hosts() if h not in taken)
    for attachment in adding:
        if attachment.address is None:
            attachment.address = next(free, None)
        if attachment.address is None:
            raise ValidationError(f"Segment {segment.prefix} has no free address left.")
    intent = planner.intent(network)
    steps = planner.plan_attach(intent, adding, live, _access_switch(network))
    if dry_run:
        return push(network=network, plan=steps, operation="attach", dry_run=True)
    with transaction.atomic():  # claim the NICs first: a NIC is on one network at a time
        for attachment in adding:
            attachment.save()
    try:
        pushes = push(network=network, plan=steps, operation="attach")
    except Exception:
        NetworkAttachment.objects.filter(pk__in=[a.pk for a in adding]).update(
            state=NetworkAttachment.State.FAILED
        )
        raise
    NetworkAttachment.objects.filter(pk__in=[a.pk for a in adding]).update(
        state=NetworkAttachment.State.ATTACHED
    )
    ib_partitions_sync(site=network.site)
    return pushes


def network_detach(
    *,
    network: TenantNetwork,
    interfaces: list[NetworkInterface],
    actor: Actor,
    dry_run: bool = False,
):
    live = _live(network)
    leaving = [a for a in live if a.interface_id in {i.pk for i in interfaces}]
    steps = planner.plan_detach(planner.intent(network), leaving, live, _access_switch(network))
    pushes = push(network=network, plan=steps, operation="detach", dry_run=dry_run)
    if not dry_run:
        NetworkAttachment.objects.filter(pk__in=[a.pk for a in leaving]).update(
            state=NetworkAttachment.State.DETACHED
        )
        ib_partitions_sync(site=network.site)
    return pushes


def network_bastion_key_set(*, network: TenantNetwork, host_key: str) -> None:
    """Record the host key the network's bastion runs with (`type base64`), so the customer's
    first jump is verified too. ValidationError for anything that is not a public key."""
    _, normalised, _, _ = ssh_key_parse(host_key)
    if network.bastion_host_key != normalised:
        TenantNetwork.objects.filter(pk=network.pk).update(bastion_host_key=normalised)
        network.bastion_host_key = normalised


def network_delete(*, network: TenantNetwork, actor: Actor) -> TenantNetwork:
    """Detach every NIC, then give the numbers back to the pools."""
    live = _live(network)
    if live:
        network_detach(network=network, interfaces=[a.interface for a in live], actor=actor)
    with transaction.atomic():
        network = TenantNetwork.objects.select_for_update().get(pk=network.pk)
        if network.state == TenantNetwork.State.DELETED:  # deleted meanwhile: nothing left
            return network
        numbers = [network.l3vni_id, network.pkey_id]
        for segment in network.segments.all():
            numbers += [segment.vlan_id, segment.l2vni_id]
        network_transition(network=network, to=TenantNetwork.State.DELETED, actor=actor.label)
        for allocation in NumberAllocation.objects.filter(pk__in=[n for n in numbers if n]):
            inventory_delete(obj=allocation, actor=actor)  # the numbers go back to the pools
    return network


def ib_partitions_sync(*, site: Site) -> str:
    """Rewrite the site's OpenSM partitions: each active network's PKey with the InfiniBand
    port GUIDs of the nodes attached to it."""
    from django.conf import settings

    from fabric.networks.drivers import opensm

    partitions: dict[str, tuple[int, list[str]]] = {}
    for network in TenantNetwork.objects.filter(site=site, state="active").select_related("pkey"):
        if network.pkey is None:
            continue
        nodes = NetworkAttachment.objects.filter(
            network=network, state=NetworkAttachment.State.ATTACHED
        ).values_list("interface__node", flat=True)
        guids = NetworkInterface.objects.filter(
            node__in=nodes, kind=NetworkInterface.Kind.INFINIBAND
        ).exclude(ib_guid=None)
        partitions[network.device_name] = (
            network.pkey.value,
            list(guids.values_list("ib_guid", flat=True)),
        )
    content = opensm.render(partitions)
    directory = Path(settings.OPENSM_PARTITIONS_DIR)
    opensm.write(directory / f"{site.name}.partitions.conf", content, directory / "opensm.pid")
    return content
