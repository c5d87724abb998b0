"""Run the test bed for `make run`: one FakeNOS switch per vendor over real SSH, the sushy-tools
Redfish emulator with one BMC per lab server and per few demo H100 and A100 servers (each of
which lab_servers runs as a lab server, so only servers that boot are sold), and a "lab" site
in the inventory whose leaves are those switches, with servers for sale behind them (NVIDIA
L40S), so bare-metal orders run end to end. Stops on Ctrl-C / SIGTERM."""

import contextlib
import secrets
import signal
import threading
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from fabric.models import CableEnd, NetworkInterface, Node, Site, Switch
from fabric.services.power import bmc_set
from fabric.testbed import bmcs, inventory
from fabric.testbed.fleet import fleet_bare_metal_nodes
from fabric.testbed.servers import PROVISIONING_NIC, nic_mac
from fabric.testbed.switches import DEFAULT_PLATFORMS, SwitchSpec, start_switches
from portal.embedded import free_port

LAB_GPU_MODEL = "NVIDIA L40S"
FLEET_SERVERS_PER_TYPE = 4  # each a lab server (lab_servers): sold only what boots


def _lab_fleet_nodes() -> list[Node]:
    """The first few demo servers of each generation sold as bare metal, each with the
    provisioning NIC it boots from (a MAC derived from its name, as the lab's servers have)."""
    chosen, per_type = [], {}
    for node in fleet_bare_metal_nodes():
        if per_type.get(node.node_type, 0) < FLEET_SERVERS_PER_TYPE:
            per_type[node.node_type] = per_type.get(node.node_type, 0) + 1
            NetworkInterface.objects.get_or_create(
                node=node, name=PROVISIONING_NIC, defaults={"mac": nic_mac(node.name)}
            )
            chosen.append(node)
    return chosen


def _leaves_of(nodes: list[Node]) -> list[Switch]:
    """The switches the nodes' Ethernet NICs are cabled to."""
    ports = CableEnd.objects.filter(
        cable__ends__interface__node__in=nodes,
        cable__ends__interface__kind=NetworkInterface.Kind.ETHERNET,
        port__isnull=False,
    ).values_list("port__switch_id", flat=True)
    return list(Switch.objects.filter(pk__in=ports).order_by("name"))


class Command(BaseCommand):
    help = "Start FakeNOS switches and a Redfish emulator and register them as the lab site."

    def handle(self, *args, **options):
        var = Path(settings.BASE_DIR) / "var"
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        fleet = _lab_fleet_nodes()  # a few of the demo's H100 and A100 servers too
        # Their leaves answer for real too (FakeNOS of their platform), so their orders'
        # networks are pushed like the lab's.
        services = Node.objects.filter(role=Node.Role.SERVICES, site__nodes__in=fleet).distinct()
        fleet_leaves = _leaves_of([*fleet, *services])  # and their sites' jump hosts' trunks
        fleet_specs = [SwitchSpec(leaf.name, leaf.platform) for leaf in fleet_leaves]
        lab_specs = [SwitchSpec(f"{p.split('_')[0]}1", p) for p in DEFAULT_PLATFORMS]
        with contextlib.ExitStack() as running:
            lab = running.enter_context(start_switches(lab_specs, state_dir=var / "switches"))
            devices = list(lab)
            if fleet_specs:
                leaves = start_switches(fleet_specs, state_dir=var / "switches-fleet")
                for device in running.enter_context(leaves):
                    devices.append(device)
                    Switch.objects.filter(name=device.name).update(
                        management_address=device.host, management_port=device.port,
                        username=device.username,
                        credentials_ref=f"env:{inventory.PASSWORD_VARIABLE}",
                    )  # fmt: skip
            if Site.objects.filter(name="lab").exists():
                for device in lab:  # new free ports each start
                    Switch.objects.filter(name=device.name).update(management_port=device.port)
            else:
                inventory.build(switches=lab, nodes_per_switch=2, gpu_model=LAB_GPU_MODEL)
            lab_nodes = Node.objects.filter(site__name="lab", role=Node.Role.SERVER)
            nodes = list(lab_nodes.order_by("name")) + fleet
            emulator = bmcs.start(
                names=[n.name for n in nodes],
                port=free_port(),
                directory=var / "bmc",
                password=secrets.token_hex(16),
            )
            try:
                for node in nodes:  # a fresh password each start, stored encrypted
                    bmc_set(
                        node=node,
                        url=emulator.url,
                        system_id=emulator.system_id(node.name),
                        username=bmcs.USERNAME,
                        password=emulator.password,
                    )
                names = ", ".join(f"{d.name} ({d.device_type}) :{d.port}" for d in devices)
                self.stdout.write(f"switch test bed up: {names}", ending="\n")
                self.stdout.write(f"BMC emulator up: {emulator.url} ({len(nodes)} servers)")
                self.stdout.flush()
                stop.wait()
            finally:
                emulator.stop()
