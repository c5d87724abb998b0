"""Run the lab's data center for `make run` (as root): one lab server (fabric/testbed/servers)
per inventory node with a BMC (up to --count), each powered by that BMC (the sushy-tools
emulator `testbed_switches` runs) and booting the lab's stand-in for an OS image from the
portal; dnsmasq on the provisioning network; the portal answering the servers on
PROVISIONING_SERVER_ADDRESS (a second web server, bound there); the tenant side following the
inventory (tenant NICs on their segments, one SSH bastion per network) and a customer laptop,
the namespace `<prefix>-laptop`, to try the ssh line an order shows:

    sudo ip netns exec sflab-laptop ssh -J jump@<bastion> ubuntu@<server>

BMCs are registered by `testbed_switches` at its start, with a fresh password and port each
time: this command waits for them, and reads them again at each sync. Stops on Ctrl-C /
SIGTERM, removing every namespace and process of the lab; the disks stay under --root. A lab
left by a killed run (same --prefix) is removed at start. Without root it says so and idles,
so the rest of `make run` goes on."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from itertools import chain, zip_longest
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections

from fabric.models import Bmc, Node
from fabric.testbed.servers import PROVISIONING_NIC
from fabric.testbed.servers.site import LabSite, bmc_accesses, server_spec
from portal import stack

SETTLE_S = 2


def lab_nodes(count: int) -> list[Node]:
    """Up to `count` nodes with a BMC, the GPU models in turn (each model's by name), so that
    every model sold as bare metal has a server in the lab."""
    by_model: dict[str, list[Node]] = {}
    for node in Node.objects.filter(bmc__isnull=False).order_by("name"):
        by_model.setdefault(node.gpu_model, []).append(node)
    in_turn = chain.from_iterable(zip_longest(*(by_model[m] for m in sorted(by_model))))
    return [node for node in in_turn if node is not None][:count]


class Command(BaseCommand):
    help = "Run the lab's servers, provisioning network and tenant access (root)."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=16, help="how many servers (16)")
        parser.add_argument(
            "--root",
            default=str(Path(settings.BASE_DIR) / "var" / "lab-servers"),
            help="where the servers' disks and consoles live (var/lab-servers)",
        )
        parser.add_argument(
            "--prefix",
            default=os.environ.get("LAB_PREFIX", "sflab"),
            help="names of namespaces and links (LAB_PREFIX, sflab)",
        )
        parser.add_argument(
            "--wait", type=float, default=120, help="seconds to wait for BMCs to be registered"
        )
        parser.add_argument("--refresh", type=float, default=1, help="seconds between syncs")

    def handle(self, *args, count, root, prefix, wait, refresh, **options):
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        if os.geteuid() != 0:
            self.stderr.write(
                "lab servers are namespaces: run `make run` as root to boot them; "
                "bare-metal orders will wait for servers that never boot."
            )
            stop.wait()
            return
        nodes = self._wait_for_bmcs(stop, wait, count)
        if stop.is_set():
            return
        specs = [server_spec(node) for node in nodes]
        names = [spec.name for spec in specs]
        site = LabSite(
            specs,
            accesses=lambda: bmc_accesses(names),
            root=Path(root),
            prefix=prefix,
            provisioning=settings.PROVISIONING_PREFIX,
            server_address=settings.PROVISIONING_SERVER_ADDRESS,
            host_link=settings.PROVISIONING_INTERFACE,
            reclaim=True,
        )
        portal = urlsplit(settings.PROVISIONING_PORTAL_URL)
        with site, contextlib.ExitStack() as processes:
            stack.web(
                processes, env=dict(os.environ), logs=Path(settings.BASE_DIR) / "var",
                host=portal.hostname, port=portal.port or 80, log_name="web-provisioning.log",
            )  # fmt: skip
            self._describe(site)
            while not stop.wait(refresh):
                close_old_connections()
                try:
                    site.sync()
                except Exception as exc:  # the lab goes on: said, then retried
                    self.stderr.write(f"lab sync failed, will retry: {exc}")

    def _wait_for_bmcs(self, stop, wait: float, count: int) -> list[Node]:
        """testbed_switches registers BMCs one after the other: wait until their number holds."""
        deadline, registered, settled = time.monotonic() + wait, -1, 0
        while settled < SETTLE_S and time.monotonic() < deadline and not stop.wait(1):
            close_old_connections()
            now = Bmc.objects.count()
            settled = settled + 1 if now == registered and now > 0 else 0
            registered = now
        nodes = lab_nodes(count)
        if not nodes:
            raise CommandError(f"no node has a BMC after {wait:.0f} s: is testbed_switches up?")
        return nodes

    def _describe(self, site: LabSite) -> None:
        lab = site.lab
        self.stdout.write(
            f"lab up: {len(lab)} servers in {lab.root}; provisioning {lab.provisioning_network} "
            f"on {lab.host_link} ({lab.server_address.ip}); customer laptop: "
            f"ip netns exec {site.access.laptop_ns} ssh -J jump@<bastion> ubuntu@<server>"
        )
        for server in lab:
            self.stdout.write(
                f"  {server.name:<20} {server.gpu_model or '-':<24} "
                f"{PROVISIONING_NIC} {server.provisioning_mac}  netns {server.netns}"
            )
        self.stdout.flush()
