"""Make a demo fleet report: each node's hardware, as the inventory describes it (optionally
with faults), goes through the real agent (`python -m fabric.agent --simulate`) to a running
portal. Issuing the tokens replaces the nodes' existing agent tokens: run it on demo fleets."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from fabric.models import Node
from fabric.services.agent import node_agent_token_issue
from portal.services.audit import Actor

FAULTS = ("drop_gpu", "change_serial", "unknown_mac")


def hardware_description(node: Node) -> dict[str, Any]:
    return {
        "hostname": node.name,
        "gpus": [
            {
                "uuid": gpu.uuid,
                "serial": gpu.serial,
                "name": gpu.model,
                "memory_mb": gpu.memory_mb,
                "pci_bus_id": gpu.pci_bus_id,
                "mig_capable": gpu.mig_capable,
            }
            for gpu in node.gpus.all()
        ],
        "nics": [
            {
                "name": nic.name,
                "mac": nic.mac,
                "kind": nic.kind,
                "speed_mbps": nic.speed_gbps * 1000,
                "ib_guid": nic.ib_guid,
            }
            for nic in node.interfaces.all()
        ],
    }


def inject_fault(description: dict[str, Any], rng: random.Random) -> str:
    """Change `description` the way broken or swapped hardware would; returns what was done."""
    fault = rng.choice(FAULTS)
    gpus = description["gpus"]
    if fault == "drop_gpu" and gpus:
        gone = gpus.pop(rng.randrange(len(gpus)))
        return f"dropped {gone['uuid']}"
    if fault == "change_serial" and gpus:
        gpu = rng.choice(gpus)
        gpu["serial"] = f"SWAPPED{rng.getrandbits(32):08x}"
        return f"changed the serial of {gpu['uuid']}"
    mac = "06:" + ":".join(f"{rng.getrandbits(8):02x}" for _ in range(5))
    description["nics"].append({"name": "ethx", "mac": mac, "kind": "ethernet"})
    return f"added unknown MAC {mac}"


def run_agent(*, description: Path, portal: str, token: str) -> subprocess.CompletedProcess:
    # The token travels in the environment, not on a command line that `ps` shows.
    env = {**os.environ, "NODE_AGENT_TOKEN": token}
    return subprocess.run(
        [sys.executable, "-m", "fabric.agent", "--simulate", str(description), "--portal", portal],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _wait_for_portal(portal: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(portal.rstrip("/") + "/healthz", timeout=2):  # noqa: S310
                return
        except OSError:
            if time.monotonic() >= deadline:
                if seconds:
                    raise CommandError(f"{portal} did not answer in {seconds:.0f}s.") from None
                return
            time.sleep(0.5)


class Command(BaseCommand):
    help = "Post simulated agent reports for the inventory's nodes to a running portal."

    def add_arguments(self, parser):
        parser.add_argument("--portal", required=True, help="the running portal's base URL")
        parser.add_argument("--site", help="only the nodes of this site (by name)")
        parser.add_argument("--limit", type=int, help="at most this many nodes")
        parser.add_argument("--faults", type=int, default=0, help="nodes given a random fault")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--workers", type=int, default=4, help="agents run at once")
        parser.add_argument(
            "--wait", type=float, default=0, help="seconds to wait for the portal to answer"
        )

    def handle(self, *args, portal, site, limit, faults, seed, workers, wait, **options):
        _wait_for_portal(portal, wait)
        nodes = Node.objects.prefetch_related("gpus", "interfaces").order_by("name")
        if site:
            nodes = nodes.filter(site__name=site)
        nodes = list(nodes[:limit] if limit else nodes)
        if not nodes:
            raise CommandError("No nodes to simulate.")
        rng = random.Random(seed)  # noqa: S311  (repeatable demo faults, not secrets)
        faulty = {n.pk for n in rng.sample(nodes, min(faults, len(nodes)))}
        actor = Actor.system("task")

        with tempfile.TemporaryDirectory(prefix="agent-sim-") as tmp:
            jobs = []
            for node in nodes:
                description = hardware_description(node)
                if node.pk in faulty:
                    self.stdout.write(f"{node.name}: fault: {inject_fault(description, rng)}")
                path = Path(tmp) / f"{node.pk}.json"
                path.write_text(json.dumps(description))
                jobs.append((node, path, node_agent_token_issue(node=node, actor=actor)))
            with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
                results = pool.map(
                    lambda job: run_agent(description=job[1], portal=portal, token=job[2]), jobs
                )
                failed = 0
                for (node, _, _), result in zip(jobs, results, strict=True):
                    output = (result.stdout + result.stderr).strip().replace("\n", "; ")
                    self.stdout.write(f"{node.name}: {output}")
                    failed += result.returncode != 0
        if failed:
            raise CommandError(f"{failed} of {len(nodes)} agents failed to report.")
        self.stdout.write(self.style.SUCCESS(f"{len(nodes)} nodes reported."))
