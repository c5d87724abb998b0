"""Operator list pages and API lists at fleet scale: queries and p95 render time at 10,000 GPUs,
with the ratio against the same pages on a 10x smaller fleet measured in the same run.

    python -m portal.embedded run -- .venv/bin/python bench/inventory_lists.py [--gpus 10000]

It builds each fleet in a scratch database (bench_inventory), so your data is untouched.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

URLS = [
    "/operator/",
    "/operator/nodes/",
    "/operator/nodes/?state=available",
    "/operator/switches/",
    "/operator/drift/",
    "/api/v1/inventory/nodes/",
    "/api/v1/inventory/gpus/",
    "/api/v1/inventory/interfaces/",
    "/api/v1/inventory/cables/",
]


def measure(client, repeats: int) -> dict[str, tuple[int, float]]:
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    results = {}
    for url in URLS:
        reset_queries()
        timings = []
        for _ in range(repeats):
            with CaptureQueriesContext(connection) as ctx:
                started = time.perf_counter()
                response = client.get(url)
                timings.append(time.perf_counter() - started)
            assert response.status_code == 200, url
        timings.sort()
        results[url] = (len(ctx), timings[int(0.95 * (len(timings) - 1))] * 1000)
    return results


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gpus", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    import django
    from django.test.utils import setup_test_environment

    django.setup()
    setup_test_environment()
    from django.conf import settings
    from django.db import connection
    from django.test import Client

    from fabric.models import GPU
    from fabric.testbed.fleet import fleet_generate
    from portal.models import User
    from portal.services.audit import Actor

    settings.ALLOWED_HOSTS = ["testserver"]
    old_name = connection.settings_dict["NAME"]
    connection.settings_dict["TEST"]["NAME"] = "bench_inventory"
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        operator = User.objects.create_user("bench", "bench@example.com", is_staff=True)
        client = Client()
        client.force_login(operator)
        figures = {}
        # Nodes average 7.2 GPUs across the three generations; sites of 200 nodes.
        for label, gpus in (("baseline", args.gpus // 10), ("fleet", args.gpus)):
            while GPU.objects.count() < gpus:
                fleet_generate(sites=1, nodes_per_site=200, actor=Actor.system("task"))
            count = GPU.objects.count()
            started = time.perf_counter()
            figures[label] = (count, measure(client, args.repeats))
            print(f"measured {label} ({count} GPUs) in {time.perf_counter() - started:.1f}s")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)

    base_gpus, base = figures["baseline"]
    big_gpus, big = figures["fleet"]
    small_head, big_head = f"p95 ms @{base_gpus}", f"p95 ms @{big_gpus}"
    print(f"\n{'page':<36}{'queries':>10}{small_head:>18}{big_head:>18}{'ratio':>8}")
    for url in URLS:
        (q_small, t_small), (q_big, t_big) = base[url], big[url]
        queries = f"{q_big}" if q_small == q_big else f"{q_small}->{q_big}"
        print(f"{url:<36}{queries:>10}{t_small:>18.1f}{t_big:>18.1f}{t_big / t_small:>7.2f}x")
    print(
        "\nratio = p95 at the full fleet / p95 at the 10x smaller baseline; queries must not grow"
    )
    grew = [url for url in URLS if base[url][0] != big[url][0]]
    print("query counts: " + ("constant" if not grew else f"GREW on {grew}"))
    print(f"median p95 at full fleet: {statistics.median(t for _, t in big.values()):.1f} ms")
    return 1 if grew else 0


if __name__ == "__main__":
    sys.exit(main())
