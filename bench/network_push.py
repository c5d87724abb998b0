"""Attach 8 nodes spread over 4 leaves, one switch per vendor (FakeNOS over real SSH): wall time
pushed in parallel and switch by switch in series, in the same run, and the ratio of the
parallel time to the slowest single switch (target <= 1.5).

    python -m portal.embedded run -- .venv/bin/python bench/network_push.py [--rounds 3]

It works in a scratch database (bench_network), so your data is untouched.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.scratch import django_setup, scratch_database

VENDORS = ["arista_eos", "cisco_nxos", "juniper_junos", "dell_sonic"]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    django_setup()

    with scratch_database("bench_network"):
        return run(args.rounds)


def run(rounds: int) -> int:
    from fabric.models import NetworkInterface
    from fabric.services import networks
    from fabric.testbed import inventory
    from fabric.testbed.switches import SwitchSpec, start_switches
    from portal.services.accounts import user_create
    from portal.services.audit import Actor

    actor = Actor.system("task")
    owner = user_create(
        username="bench", email="bench@example.com", password=os.urandom(8).hex(),
        organization_name="Bench",
    )  # fmt: skip
    org = owner.memberships.get().organization
    specs = [SwitchSpec(f"{p.split('_')[0]}1", p) for p in VENDORS]
    series, parallel = [], []
    with tempfile.TemporaryDirectory() as tmp, start_switches(specs, state_dir=Path(tmp)) as sw:
        site, nodes = inventory.build(switches=sw, nodes_per_switch=2, organization=org)
        nics = {n.name: NetworkInterface.objects.get(node=n, name="eth0") for n in nodes}
        by_switch = {d.name: [nics[n] for n in nics if n.startswith(d.name)] for d in sw}
        for _ in range(rounds):
            network = networks.network_create(organization=org, site=site, label="b", actor=actor)
            singles = {}
            for name, members in by_switch.items():
                started = time.perf_counter()
                networks.network_attach(network=network, interfaces=members, actor=actor)
                singles[name] = time.perf_counter() - started
            networks.network_delete(network=network, actor=actor)
            series.append(singles)
            network = networks.network_create(organization=org, site=site, label="b", actor=actor)
            started = time.perf_counter()
            networks.network_attach(network=network, interfaces=list(nics.values()), actor=actor)
            parallel.append(time.perf_counter() - started)
            networks.network_delete(network=network, actor=actor)

    print(f"\nattach 8 nodes on 4 switches (one per vendor), {rounds} rounds, median seconds:\n")
    for name in by_switch:
        print(f"  {name:<10} alone {statistics.median(r[name] for r in series):6.2f}")
    in_series = statistics.median(sum(r.values()) for r in series)
    slowest = statistics.median(max(r.values()) for r in series)
    wall = statistics.median(parallel)
    print(f"\n  series (one switch after another) {in_series:6.2f}")
    print(f"  parallel (all switches at once)   {wall:6.2f}")
    print(f"  slowest single switch              {slowest:6.2f}")
    ratio = wall / slowest
    print(f"\nparallel / slowest single = {ratio:.2f} (target <= 1.5); "
          f"speed-up over series {in_series / wall:.1f}x")  # fmt: skip
    return 0 if ratio <= 1.5 else 1


if __name__ == "__main__":
    sys.exit(main())
