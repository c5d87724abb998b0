"""Inventory for the switch test bed: one leaf per running FakeNOS device, nodes whose eth0 is
cabled to those leaves, and the pools a tenant network draws from. Used by the network tests,
the push benchmark and `make run`."""

from __future__ import annotations

import os

from django.db import transaction
from django.db.backends.postgresql.psycopg_any import NumericRange

from fabric.models import (
    GPU,
    Cable,
    CableEnd,
    NetworkInterface,
    Node,
    NodeState,
    NumberPool,
    Prefix,
    Site,
    Switch,
    SwitchPort,
)
from fabric.testbed.fleet import services_host_add
from fabric.testbed.switches import RunningSwitches

PASSWORD_VARIABLE = "STOREFRONT_TESTBED_SWITCH_PASSWORD"  # noqa: S105  (a variable name)
PORT_NAMES = {
    "arista_eos": "Ethernet{}",
    "cisco_nxos": "Ethernet1/{}",
    "juniper_junos": "xe-0/0/{}",
    "dell_sonic": "Ethernet{}",
}


@transaction.atomic
def build(
    *,
    switches: RunningSwitches,
    nodes_per_switch: int,
    site_name: str = "lab",
    organization=None,
    gpu_model: str = "",
) -> tuple[Site, list[Node]]:
    """A site whose leaves are the running devices, with `nodes_per_switch` nodes on each.
    Their GPU model is empty (not for sale) unless `gpu_model` names one."""
    site = Site.objects.create(name=site_name)
    Prefix.objects.create(site=site, vrf="tenant", prefix="10.210.0.0/16", role="tenant")
    Prefix.objects.create(site=site, vrf="storage", prefix="10.250.0.0/24", role="storage")
    for kind, first, last in (
        ("vlan", 100, 3999),
        ("vni", 10_000, 99_999),
        ("pkey", 0x100, 0x7FFE),
    ):
        NumberPool.objects.create(site=site, kind=kind, name=kind, values=NumericRange(first, last))
    nodes = []
    first_leaf = next(iter(switches)).name
    for device in switches:
        os.environ[PASSWORD_VARIABLE] = device.password  # all test devices share one password
        leaf = Switch.objects.create(
            name=device.name,
            site=site,
            vendor=device.device_type.split("_")[0],
            platform=device.device_type,
            management_address=device.host,
            management_port=device.port,
            username=device.username,
            credentials_ref=f"env:{PASSWORD_VARIABLE}",
            role=Switch.Role.LEAF,
        )
        for n in range(1, nodes_per_switch + 1):
            node = Node.objects.create(
                name=f"{device.name}-n{n}",
                serial=f"LAB-{device.name}-{n}",
                vendor="lab",
                model="lab",
                node_type="lab",
                gpu_model=gpu_model,
                site=site,
                state=NodeState.ALLOCATED if organization else NodeState.AVAILABLE,
                organization=organization,
            )
            GPU.objects.create(
                node=node,
                index=0,
                uuid=f"GPU-00000000-0000-0000-0000-{node.pk:012d}",
                model=gpu_model or "LAB GPU",
                memory_mb=1,
                pci_bus_id="00000000:18:00.0",
            )
            nic = NetworkInterface.objects.create(
                node=node, name="eth0", mac=f"02:fe:00:00:{node.pk // 256:02x}:{node.pk % 256:02x}"
            )
            NetworkInterface.objects.create(  # the provisioning NIC (fabric.provisioning)
                node=node, name="eno1", mac=f"02:fd:00:00:{node.pk // 256:02x}:{node.pk % 256:02x}"
            )
            port = SwitchPort.objects.create(
                switch=leaf, name=PORT_NAMES[device.device_type].format(n)
            )
            cable = Cable.objects.create(label=f"LAB-{node.name}")
            CableEnd.objects.create(cable=cable, side="a", interface=nic)
            CableEnd.objects.create(cable=cable, side="b", port=port)
            nodes.append(node)
        if leaf.name == first_leaf:
            port_name = PORT_NAMES[device.device_type].format(nodes_per_switch + 1)
            services_host_add(
                site=site, leaf=leaf, port_name=port_name, mac=f"02:fc:01:00:00:{site.pk % 256:02x}"
            )
    return site, nodes
