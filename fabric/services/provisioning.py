"""The provisioning network from the inventory: each provisioning NIC (a NIC named in
settings.PROVISIONING_INTERFACE_NAMES) of a server with a BMC holds an address of the
provisioning prefix in IPAM; dnsmasq reserves it for the NIC's MAC under the server's name, and
the portal serves the server's iPXE script to that address only.

Who re-renders: `manage.py provisioning_dnsmasq` owns dnsmasq and calls `provisioning_apply`
every PROVISIONING_SYNC_SECONDS; files are rewritten and dnsmasq signalled only when the result
changed. So every path that changes NICs, BMCs or node names (spreadsheet import, API, admin,
BMC registration, the fleet generator's bulk writes) is followed without a signal receiver and
without the writer knowing where dnsmasq runs. Orders change nothing here: the iPXE script is
computed on each request, from the order that holds the server at that moment."""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils.module_loading import import_string

from fabric.models import IPAddress, NetworkInterface, NodeState, Prefix
from fabric.networks.safe import UnsafeValue
from fabric.provisioning import dnsmasq, ipxe
from fabric.services.changes import inventory_delete, inventory_save
from fabric.services.cleaning import cleaning_report_url
from fabric.services.ipam import ip_allocate
from portal.services.audit import Actor

logger = logging.getLogger("fabric.provisioning")

VRF = "provisioning"
NIC_DESCRIPTION = "provisioning NIC "  # + node:nic; marks the addresses this module hands out
SERVER_DESCRIPTION = "provisioning server (dnsmasq and the portal)"


def _prefix_network() -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(settings.PROVISIONING_PREFIX, strict=True)


def _provisioning_nics() -> QuerySet[NetworkInterface]:
    return NetworkInterface.objects.filter(
        node__bmc__isnull=False,
        kind=NetworkInterface.Kind.ETHERNET,
        name__in=settings.PROVISIONING_INTERFACE_NAMES,
    )


def _reserved() -> QuerySet[IPAddress]:
    return IPAddress.objects.filter(
        prefix__vrf=VRF, prefix__prefix=_prefix_network(), interface__in=_provisioning_nics()
    ).select_related("interface__node")


def provisioning_network(*, interface: str | None = None) -> dnsmasq.Network:
    return dnsmasq.Network(
        interface=interface or settings.PROVISIONING_INTERFACE,
        prefix=_prefix_network(),
        server=ipaddress.IPv4Address(settings.PROVISIONING_SERVER_ADDRESS),
        boot_url=settings.PROVISIONING_PORTAL_URL.rstrip("/") + ipxe.CHAIN_PATH,
        lease_seconds=settings.PROVISIONING_LEASE_SECONDS,
    )


@transaction.atomic
def provisioning_addresses_sync(*, actor: Actor) -> Prefix:
    """Give each provisioning NIC of a server with a BMC an address of the provisioning prefix
    (creating the prefix, and the server's own address in it, the first time), and take back
    what this module handed to a NIC that no longer qualifies. An address stays with its NIC
    from one run to the next, so a server keeps its reservation."""
    network = _prefix_network()
    prefix = Prefix.objects.select_for_update().filter(vrf=VRF, prefix=network).first()
    if prefix is None:
        prefix = inventory_save(
            obj=Prefix(
                vrf=VRF,
                prefix=network,
                role=Prefix.Role.MANAGEMENT,
                description="provisioning network: DHCP and iPXE (fabric.provisioning)",
            ),
            actor=actor,
        )
    server = ipaddress.IPv4Address(settings.PROVISIONING_SERVER_ADDRESS)
    held = list(prefix.addresses.all())
    if all(address.address != server for address in held):
        inventory_save(
            obj=IPAddress(prefix=prefix, address=server, description=SERVER_DESCRIPTION),
            actor=actor,
        )
    wanted = {nic.pk: nic for nic in _provisioning_nics().select_related("node")}
    kept = set()
    for address in held:
        if address.interface_id in wanted and address.interface_id not in kept:
            kept.add(address.interface_id)
        elif address.description.startswith(NIC_DESCRIPTION):
            inventory_delete(obj=address, actor=actor)
    for nic_id in sorted(wanted.keys() - kept):
        nic = wanted[nic_id]
        address = ip_allocate(prefix=prefix, actor=actor, description=f"{NIC_DESCRIPTION}{nic}")
        address.interface = nic
        inventory_save(obj=address, actor=actor)
    return prefix


def provisioned_node_ids(*, node_ids) -> set[int]:
    """Those of `node_ids` that boot from the portal: a provisioning NIC holding an address
    this module reserved on the provisioning network (its VRF: any process may ask, whichever
    prefix it was configured with)."""
    return set(
        IPAddress.objects.filter(
            prefix__vrf=VRF,
            interface__in=_provisioning_nics(),
            interface__node_id__in=node_ids,
            description__startswith=NIC_DESCRIPTION,
        ).values_list("interface__node_id", flat=True)
    )


def provisioning_hosts() -> list[dnsmasq.Host]:
    """The reservations, one per provisioning NIC holding an address. A server whose name is
    not a hostname is left out (and logged), never rewritten into one."""
    hosts = []
    for row in _reserved().order_by("address"):
        try:
            hosts.append(
                dnsmasq.Host(
                    mac=row.interface.mac, hostname=row.interface.node.name, address=row.address
                )
            )
        except UnsafeValue as exc:
            logger.warning("provisioning: %s left out: %s", row.interface, exc.message)
    return hosts


@dataclass(frozen=True)
class Rendered:
    conf: str
    hosts: str
    count: int


def provisioning_render(*, directory: Path, interface: str | None = None) -> Rendered:
    network = provisioning_network(interface=interface)
    hosts = provisioning_hosts()
    return Rendered(
        conf=dnsmasq.render_conf(network, directory=directory),
        hosts=dnsmasq.render_hosts(network, hosts),
        count=len(hosts),
    )


def provisioning_apply(
    *,
    actor: Actor,
    directory: Path | None = None,
    interface: str | None = None,
    pid: int | None = None,
) -> dnsmasq.Applied:
    """Bring IPAM, the files in `directory` and the dnsmasq running as `pid` in line with the
    inventory; cheap when nothing changed (nothing is written, no signal sent)."""
    directory = dnsmasq.path(directory or settings.PROVISIONING_DIR)
    provisioning_addresses_sync(actor=actor)
    rendered = provisioning_render(directory=directory, interface=interface)
    applied = dnsmasq.dnsmasq_apply(
        directory=directory, conf=rendered.conf, hosts=rendered.hosts, pid=pid
    )
    if applied.hosts_changed:
        logger.info("provisioning: %d reservation(s) written to %s", rendered.count, directory)
    return applied


def provisioning_chain_script() -> str:
    return ipxe.chain_script(portal_url=settings.PROVISIONING_PORTAL_URL)


def provisioning_boot_script(*, mac: str, client_address: str) -> str | None:
    """The iPXE script of the server whose provisioning NIC has `mac`, for a request from the
    address reserved for that NIC. None (the view's 404) for a malformed or unknown MAC and for
    any other address: the script carries the server's metadata token, and one server on the
    provisioning network must not read another's."""
    try:
        mac = dnsmasq.mac(mac)
        client = ipaddress.ip_address(client_address)
    except (UnsafeValue, ValueError):
        return None
    if isinstance(client, ipaddress.IPv6Address) and client.ipv4_mapped:
        client = client.ipv4_mapped
    row = _reserved().filter(interface__mac=mac).first()
    if row is None or row.address != client:
        return None
    node = row.interface.node
    try:
        if node.state == NodeState.CLEANING:
            report_url = cleaning_report_url(node=node)
            if report_url is None:
                return None
            return ipxe.cleaning_script(
                name=node.name,
                report_url=report_url,
                kernel_url=settings.PROVISIONING_KERNEL_URL,
                initrd_url=settings.PROVISIONING_INITRD_URL,
            )
        seed_path = import_string(settings.PROVISIONING_SEED)(node.pk)
        if seed_path is None:
            return ipxe.local_boot_script(name=node.name)
        seed = ipxe.seed_url(portal_url=settings.PROVISIONING_PORTAL_URL, seed_path=seed_path)
        return ipxe.boot_script(
            name=node.name,
            seed=seed,
            kernel_url=settings.PROVISIONING_KERNEL_URL,
            initrd_url=settings.PROVISIONING_INITRD_URL,
        )
    except UnsafeValue as exc:
        logger.warning("provisioning: no iPXE script for %s: %s", node.name, exc.message)
        return None
