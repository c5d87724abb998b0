"""Generate a realistic demo fleet (see fabric/services/fleet.py)."""

import time

from django.core.management.base import BaseCommand

from fabric.testbed.fleet import fleet_generate
from portal.services.audit import Actor


class Command(BaseCommand):
    help = "Create demo sites with GPU servers, switches, cables and IPAM."

    def add_arguments(self, parser):
        parser.add_argument("--sites", type=int, default=2)
        parser.add_argument("--nodes-per-site", type=int, default=16)
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, sites, nodes_per_site, seed, **options):
        started = time.perf_counter()
        counts = fleet_generate(
            sites=sites, nodes_per_site=nodes_per_site, seed=seed, actor=Actor.system("task")
        )
        summary = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
        self.stdout.write(f"generated in {time.perf_counter() - started:.1f}s: {summary}")
