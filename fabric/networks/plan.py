"""From database rows to an intent, and from a change of membership to a plan: the exact,
ordered steps per switch. Adding a node adds only what is missing on its switch; removing the
last member from a switch removes the network from it."""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable

from fabric.models import NetworkAttachment, Prefix, Switch, TenantNetwork
from fabric.networks.drivers.base import Step
from fabric.networks.intent import Network, Port, Segment, StorageLeak


def intent(network: TenantNetwork, attachments: Iterable[NetworkAttachment] = ()) -> Network:
    segments = tuple(
        Segment(
            name=segment.device_name,
            vlan=segment.vlan.value,
            l2vni=segment.l2vni.value,
            gateway=ipaddress.ip_interface(f"{segment.gateway}/{segment.prefix.prefixlen}"),
        )
        for segment in network.segments.select_related("vlan", "l2vni")
    )
    access = None
    if network.access_port_id is not None and segments:
        access = Port(
            switch=network.access_port.switch.name,
            interface=network.access_port.name,
            segment=segments[0].name,
            tagged=True,
        )
    storage = None
    if network.storage:
        shared = Prefix.objects.filter(site=network.site_id, role=Prefix.Role.STORAGE).first()
        if shared is not None:
            storage = StorageLeak(storage_vrf=shared.vrf, storage_prefix=shared.prefix)
    return Network(
        name=network.device_name,
        storage=storage,
        vrf=network.vrf,
        l3vni=network.l3vni.value,
        segments=segments,
        ports=tuple(port(a) for a in attachments),
        pkey=network.pkey.value if network.pkey_id else None,
        access_prefix=network.access_prefix,
        access=access,
    )


def port(attachment: NetworkAttachment) -> Port:
    return Port(
        switch=attachment.port.switch.name,
        interface=attachment.port.name,
        segment=attachment.segment.device_name,
        node=attachment.interface.node.name,
    )


def plan_attach(
    network: Network,
    adding: list[NetworkAttachment],
    live: list[NetworkAttachment],
    access_switch: Switch | None = None,
) -> dict[Switch, list[Step]]:
    """The network's first members bring its access trunk (`network.access`, on
    `access_switch`) with them: the jump host joins when there is something to reach."""
    carrying = {a.port.switch_id for a in live}
    legs = [(a.port.switch, port(a)) for a in adding]
    if adding and not live and network.access is not None:
        legs.append((access_switch, network.access))
    plan: dict[Switch, list[Step]] = defaultdict(list)
    for switch, leg in legs:
        if switch.pk not in carrying and not plan[switch]:
            plan[switch].append(Step("network_add", network))
        plan[switch].append(Step("port_add", network, leg))
    return dict(plan)


def plan_detach(
    network: Network,
    leaving: list[NetworkAttachment],
    live: list[NetworkAttachment],
    access_switch: Switch | None = None,
) -> dict[Switch, list[Step]]:
    """The last members take the access trunk with them."""
    gone = {a.pk for a in leaving}
    staying = defaultdict(int)
    for attachment in live:
        if attachment.pk not in gone:
            staying[attachment.port.switch_id] += 1
    plan: dict[Switch, list[Step]] = defaultdict(list)
    for attachment in leaving:
        plan[attachment.port.switch].append(Step("port_remove", network, port(attachment)))
    if leaving and not staying and network.access is not None:
        plan[access_switch].append(Step("port_remove", network, network.access))
    for switch, steps in plan.items():
        if not staying[switch.pk]:
            steps.append(Step("network_remove", network))
    return dict(plan)
