"""Run the test bed for `make run`: one FakeNOS switch per vendor over real SSH, the sushy-tools
Redfish emulator with one BMC per lab server and per demo H100 and A100 server, and a "lab" site
in the inventory whose leaves are those switches, with servers for sale behind them (NVIDIA
L40S), so bare-metal orders run end to end. Stops on Ctrl-C / SIGTERM."""

import secrets
import signal
import threading
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from fabric.models import Node, Site, Switch
from fabric.services.power import bmc_set
from fabric.testbed import bmcs, inventory
from fabric.testbed.fleet import fleet_bare_metal_nodes
from fabric.testbed.switches import DEFAULT_PLATFORMS, SwitchSpec, start_switches
from portal.embedded import free_port

LAB_GPU_MODEL = "NVIDIA L40S"


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
            nodes += fleet_bare_metal_nodes()  # the demo's H100 and A100 servers too
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
