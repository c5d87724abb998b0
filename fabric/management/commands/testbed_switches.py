"""Run the switch test bed for `make run`: one FakeNOS device per vendor over real SSH, and a
"lab" site in the inventory whose leaves are those devices, with nodes of the demo customer
behind them, so tenant networks can be pushed and read back. Stops on Ctrl-C / SIGTERM."""

import signal
import threading
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from fabric.models import Site, Switch
from fabric.testbed import inventory
from fabric.testbed.switches import DEFAULT_PLATFORMS, SwitchSpec, start_switches
from portal.models import Organization


class Command(BaseCommand):
    help = "Start FakeNOS switches (one per vendor) and register them as the lab site's leaves."

    def handle(self, *args, **options):
        specs = [SwitchSpec(f"{p.split('_')[0]}1", p) for p in DEFAULT_PLATFORMS]
        state_dir = Path(settings.BASE_DIR) / "var" / "switches"
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        with start_switches(specs, state_dir=state_dir) as running:
            if Site.objects.filter(name="lab").exists():
                for device in running:  # new free ports each start
                    Switch.objects.filter(name=device.name).update(management_port=device.port)
            else:
                owner = Organization.objects.filter(slug="acme-ai").first()
                inventory.build(switches=running, nodes_per_switch=2, organization=owner)
            names = ", ".join(f"{d.name} ({d.device_type}) :{d.port}" for d in running)
            self.stdout.write(f"switch test bed up: {names}", ending="\n")
            self.stdout.flush()
            stop.wait()
