"""Run the test bed for `make run`: one FakeNOS switch per vendor over real SSH, the sushy-tools
Redfish emulator with one BMC per lab server and per few demo H100 and A100 servers (each of
which lab_servers runs as a lab server, so only servers that boot are sold), and a "lab" site
in the inventory whose leaves are those switches, with servers for sale behind them (NVIDIA
L40S), so bare-metal orders run end to end. Stops on Ctrl-C / SIGTERM."""

import secrets
import signal
import threading
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from fabric.models import NetworkInterface, Node, Site, Switch
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


class Command(BaseCommand):
    help = "Start FakeNOS switches and a Redfish emulator and register them as the lab site."

    def handle(self, *args, **options):
        specs = [SwitchSpec(f"{p.split('_')[0]}1", p) for p in DEFAULT_PLATFORMS]
        var = Path(settings.BASE_DIR) / "var"
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        with start_switches(specs, state_dir=var / "switches") as running:
            if Site.objects.filter(name="lab").exists():
                for device in running:  # new free ports each start
                    Switch.objects.filter(name=device.name).update(management_port=device.port)
            else:
                inventory.build(switches=running, nodes_per_switch=2, gpu_model=LAB_GPU_MODEL)
            nodes = list(Node.objects.filter(site__name="lab").order_by("name"))
            nodes += _lab_fleet_nodes()  # a few of the demo's H100 and A100 servers too
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
                names = ", ".join(f"{d.name} ({d.device_type}) :{d.port}" for d in running)
                self.stdout.write(f"switch test bed up: {names}", ending="\n")
                self.stdout.write(f"BMC emulator up: {emulator.url} ({len(nodes)} servers)")
                self.stdout.flush()
                stop.wait()
            finally:
                emulator.stop()
