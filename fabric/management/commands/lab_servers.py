"""Run the lab's GPU servers for `make run` (as root): one lab server (fabric/testbed/servers)
per inventory node that has a BMC, by default 8 taken in turn from each GPU model, each powered
by that BMC (the sushy-tools emulator `testbed_switches` runs): a Redfish power on boots it, a
power off pulls its plug. A server's provisioning NIC keeps the MAC the inventory holds for it.

BMCs are registered by `testbed_switches` at its start, with a fresh password and port each
time: this command waits for them, and reads their access again every few seconds. Stops on
Ctrl-C / SIGTERM, removing every namespace and process of the lab; the disks stay under
--root. A lab left behind by a killed run (same --prefix) is removed at start."""

from __future__ import annotations

import os
import signal
import threading
import time
from itertools import chain, zip_longest
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, close_old_connections
from django.db.models import Count

from fabric.errors import PowerFatal
from fabric.models import Bmc, NetworkInterface, Node
from fabric.power.base import BmcAccess
from fabric.services.power import bmc_access
from fabric.testbed.servers import (
    PROVISIONING_NETWORK,
    PROVISIONING_NIC,
    LabServers,
    PowerWatcher,
    ServerSpec,
)

SETTLE_S = 2


def lab_nodes(count: int) -> list[Node]:
    """Up to `count` nodes with a BMC, the GPU models in turn (each model's by name), so that
    every model sold as bare metal has a server in the lab."""
    nodes = Node.objects.filter(bmc__isnull=False).annotate(gpu_count=Count("gpus"))
    by_model: dict[str, list[Node]] = {}
    for node in nodes.order_by("name"):
        by_model.setdefault(node.gpu_model, []).append(node)
    in_turn = chain.from_iterable(zip_longest(*(by_model[m] for m in sorted(by_model))))
    return [node for node in in_turn if node is not None][:count]


def server_spec(node: Node) -> ServerSpec:
    nics = NetworkInterface.objects.filter(node=node, name=PROVISIONING_NIC).exclude(mac="")
    return ServerSpec(
        node.name,
        gpu_model=node.gpu_model,
        gpus=node.gpu_count,
        macs={nic.name: nic.mac for nic in nics},
    )


def bmc_accesses(names: list[str]) -> dict[str, BmcAccess]:
    """Each node's BMC as its record says now; a BMC whose password cannot be read is left
    out (its server stays as it is)."""
    accesses = {}
    for bmc in Bmc.objects.filter(node__name__in=names).select_related("node"):
        try:
            accesses[bmc.node.name] = bmc_access(bmc=bmc)
        except PowerFatal:
            continue
    return accesses


class Command(BaseCommand):
    help = "Run the lab's servers as namespaces, powered by their emulated BMCs (root)."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=8, help="how many servers (8)")
        parser.add_argument(
            "--root",
            default=str(Path(settings.BASE_DIR) / "var" / "lab-servers"),
            help="where the servers' disks and consoles live (var/lab-servers)",
        )
        parser.add_argument("--prefix", default="sflab", help="names of namespaces and links")
        parser.add_argument(
            "--host-link",
            default=getattr(settings, "PROVISIONING_INTERFACE", "prov0"),
            help="this machine's link to the provisioning bridge, holding the provisioning "
            "server's address (PROVISIONING_INTERFACE); '' keeps that address in the "
            "provisioning namespace instead",
        )
        parser.add_argument(
            "--wait", type=float, default=120, help="seconds to wait for BMCs to be registered"
        )
        parser.add_argument(
            "--refresh", type=float, default=5, help="seconds between reads of the BMC records"
        )

    def handle(self, *args, count, root, prefix, host_link, wait, refresh, **options):
        if os.geteuid() != 0:
            raise CommandError("lab servers are namespaces: run this command as root.")
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        # testbed_switches registers BMCs one after the other: wait until their number holds.
        deadline, registered, settled = time.monotonic() + wait, -1, 0
        while settled < SETTLE_S and time.monotonic() < deadline and not stop.wait(1):
            close_old_connections()
            now = Bmc.objects.count()
            settled = settled + 1 if now == registered and now > 0 else 0
            registered = now
        nodes = lab_nodes(count)
        if not nodes:
            raise CommandError(f"no node has a BMC after {wait:.0f} s: is testbed_switches up?")
        specs = [server_spec(node) for node in nodes]
        names = [spec.name for spec in specs]
        lab = LabServers(
            specs,
            root=Path(root),
            prefix=prefix,
            provisioning=getattr(settings, "PROVISIONING_PREFIX", PROVISIONING_NETWORK),
            server_address=getattr(settings, "PROVISIONING_SERVER_ADDRESS", None),
            host_link=host_link or None,
            reclaim=True,
        )
        with lab, PowerWatcher(lab, bmc_accesses(names)) as watcher:
            where = lab.host_link or f"{lab.provisioning_bridge} in netns {lab.provisioning_ns}"
            self.stdout.write(
                f"lab servers up: {len(lab)} in {lab.root}; provisioning "
                f"{lab.provisioning_network}, server address {lab.server_address.ip} on {where}"
            )
            for server in lab:
                self.stdout.write(
                    f"  {server.name:<20} {server.gpu_model or '-':<24} "
                    f"{PROVISIONING_NIC} {server.provisioning_mac}  netns {server.netns}"
                )
            self.stdout.flush()
            while not stop.wait(refresh):
                close_old_connections()
                try:
                    watcher.retarget(bmc_accesses(names))
                except DatabaseError as exc:
                    self.stderr.write(f"BMC records unreadable, keeping the last: {exc}")
