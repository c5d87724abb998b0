"""The API under concurrent clients: 1, 16 and 64 clients, each with its own organization and API
token, place a 1-GPU allocation (`POST /api/v1/capacity/allocations/`), release it, and every few
rounds place a bare-metal order (`POST /api/v1/orders/`), against the web server the Procfile
runs (a real process, as `make run` serves it) on the embedded PostgreSQL. For each level it
prints accepted allocations per second, p50/p99 per kind of call and the errors by status;
afterwards it checks in SQL that no GPU was ever booked twice (overlapping bookings of one GPU).
Targets at 64 clients: zero 5xx, zero double booking, >= 200 accepted per second, p99 <= 1 s.

    python -m portal.embedded run -- .venv/bin/python bench/api_load.py [--seconds 10]

It works in a scratch database (bench_api_load), so your data is untouched. Orders are placed
and answered, not fulfilled (no worker runs: the API is what is measured). `--web` replaces
the Procfile's web command (with {host} and {port}) to compare servers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.loadgen import Connection, percentile
from bench.scratch import django_setup, process_environment, scratch_database

H100 = "NVIDIA H100 80GB HBM3"
PLACE = {"shape": "gpu", "gpu_model": H100, "count": 1, "lease_hours": 1}
ORDER = {"product": "bare-metal", "gpu_model": H100, "nodes": 1}
# Bare metal is ordered with an SSH key of the orderer's.
LOAD_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJjC+Qo+TLKbw6xoy5Od0dJ3PmJLxsNkegZ+mEYaboPy"
TARGET_RATE, TARGET_P99_MS = 200, 1000


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", default="1,16,64", help="concurrency levels, in order")
    parser.add_argument("--seconds", type=float, default=10.0, help="per level")
    parser.add_argument("--nodes-per-site", type=int, default=160, help="two sites")
    parser.add_argument("--order-every", type=int, default=8, help="rounds per order placed")
    parser.add_argument("--web", help="web command instead of the Procfile's ({host} {port})")
    args = parser.parse_args()
    django_setup()
    with scratch_database("bench_api_load"):
        return run(args)


def _tenants(count: int) -> list[str]:
    """`count` organizations, each able to buy (verified owner, prepaid credit), with a
    read-write API token; returns the tokens."""
    from billing.models import CreditGrant
    from portal.models import ApiToken
    from portal.services.accounts import user_create
    from portal.services.audit import Actor
    from portal.services.ssh_keys import ssh_key_add
    from portal.services.tokens import api_token_create

    tokens = []
    for n in range(count):
        owner = user_create(
            username=f"load{n}", email=f"load{n}@example.com", password=f"load-password-{n}",
            organization_name=f"Load {n}", email_verified=True,
        )  # fmt: skip
        membership = owner.memberships.get()
        CreditGrant.objects.create(organization=membership.organization, amount=1_000_000)
        ssh_key_add(user=owner, name="load", public_key=LOAD_KEY, actor=Actor(user=owner))
        _, secret = api_token_create(
            by=membership, name="load", scope=ApiToken.Scope.READ_WRITE, expires_at=None,
            actor=Actor(user=owner),
        )  # fmt: skip
        tokens.append(secret)
    return tokens


async def _client(url: str, token: str, deadline: float, order_every: int, samples: list):
    """One API client's loop until `deadline`: place, release, and now and then an order."""
    headers = {"Authorization": f"Bearer {token}", "X-Forwarded-Proto": "https"}
    conn = await Connection(url, headers).open()
    place = conn.prepare("POST", "/api/v1/capacity/allocations/", PLACE)
    order = conn.prepare("POST", "/api/v1/orders/", ORDER)
    rounds = 0
    try:
        while time.perf_counter() < deadline:
            rounds += 1
            started = time.perf_counter()
            status, body = await conn.send(place)
            samples.append(("place", status, time.perf_counter() - started))
            if status == 201:
                allocation = json.loads(body)["id"]
                started = time.perf_counter()
                status, _ = await conn.call(
                    "POST", f"/api/v1/capacity/allocations/{allocation}/release/"
                )
                samples.append(("release", status, time.perf_counter() - started))
            if rounds % order_every == 1:  # the first round, then every order_every-th
                started = time.perf_counter()
                status, _ = await conn.send(order)
                samples.append(("order", status, time.perf_counter() - started))
    finally:
        conn.close()


async def level(url: str, tokens: list[str], seconds: float, order_every: int) -> tuple:
    samples: list[tuple[str, int, float]] = []
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    await asyncio.gather(*(_client(url, t, deadline, order_every, samples) for t in tokens))
    return samples, time.perf_counter() - started


def double_bookings() -> int:
    """Pairs of bookings of the same GPU whose units and periods overlap (the exclusion
    constraint should make this impossible; counted here from the rows themselves)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT count(*) FROM fabric_gpubooking a JOIN fabric_gpubooking b
               ON a.gpu_id = b.gpu_id AND a.id < b.id
               AND a.units && b.units AND a.period && b.period"""
        )
        return cursor.fetchone()[0]


def report(clients: int, samples: list, elapsed: float) -> dict:
    by_kind: dict[str, list[float]] = defaultdict(list)
    statuses: Counter = Counter()
    for kind, status, seconds in samples:
        statuses[(kind, status)] += 1
        if 200 <= status < 300:
            by_kind[kind].append(seconds * 1000)
    placed = len(by_kind["place"])
    errors = {f"{k} {s}": n for (k, s), n in sorted(statuses.items()) if not 200 <= s < 300}
    all_ms = [s * 1000 for _, _, s in samples]
    print(f"\n  {clients} client(s), {elapsed:.1f} s: {placed / elapsed:.1f} allocations "
          f"accepted per second, {len(samples) / elapsed:.1f} requests per second")  # fmt: skip
    for kind in ("place", "release", "order"):
        ms = by_kind[kind]
        if ms:
            print(f"    {kind:<8} {len(ms):6d} ok   p50 {percentile(ms, 0.5):7.1f} ms   "
                  f"p99 {percentile(ms, 0.99):7.1f} ms")  # fmt: skip
    print(f"    errors: {errors or 'none'}")
    return {
        "rate": placed / elapsed, "p99": percentile(all_ms, 0.99),
        "server_errors": sum(n for (_, s), n in statuses.items() if s >= 500),
    }  # fmt: skip


def run(args) -> int:
    from catalog.services.products import product_upsert
    from fabric.models import Node
    from fabric.services.power import bmc_set
    from fabric.testbed.fleet import fleet_generate
    from portal import stack
    from portal.services.audit import Actor

    levels = [int(c) for c in args.clients.split(",")]
    started = time.perf_counter()
    fleet = fleet_generate(
        sites=2, nodes_per_site=args.nodes_per_site, actor=Actor.system("task"), spare_fraction=0
    )
    product_upsert(slug="bare-metal", name="Bare metal", kind="bare_metal", summary="-")
    # H100 servers are sold as bare metal once one has a BMC on record (never called here).
    bmc_set(
        node=Node.objects.filter(gpu_model=H100).first(), url="https://127.0.0.1:9",
        system_id="1", username="admin", password="unused",
    )  # fmt: skip
    tokens = _tenants(max(levels))
    print(f"fleet: {fleet['Node']} nodes, {fleet['GPU']} GPUs; {len(tokens)} tenants "
          f"({time.perf_counter() - started:.0f} s to set up)")  # fmt: skip
    # As production behind a TLS-terminating proxy: no debug (nor its query log), HTTPS.
    env = process_environment(DJANGO_DEBUG="0", DJANGO_SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto")
    results = {}
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as processes:
        url, _ = stack.web(processes, env=env, logs=Path(tmp), command=args.web)
        print(f"web: {stack.web_command(args.web)}")
        asyncio.run(level(url, tokens[:1], 1.0, args.order_every))  # warm up
        for clients in levels:
            samples, elapsed = asyncio.run(
                level(url, tokens[:clients], args.seconds, args.order_every)
            )
            results[clients] = report(clients, samples, elapsed)
        if any(r["server_errors"] for r in results.values()):
            print("\n  the web server's log ends:\n" + (Path(tmp) / "web.log").read_text()[-3000:])
    doubles = double_bookings()
    print(f"\n  GPUs booked twice (overlapping bookings of one GPU): {doubles}")
    top = results[max(levels)]
    met = (
        top["server_errors"] == 0 and doubles == 0 and top["rate"] >= TARGET_RATE
        and top["p99"] <= TARGET_P99_MS
    )  # fmt: skip
    print(f"  at {max(levels)} clients: {top['server_errors']} 5xx (target 0), "
          f"{top['rate']:.0f} accepted/s (target >= {TARGET_RATE}), p99 {top['p99']:.0f} ms "
          f"(target <= {TARGET_P99_MS}): {'met' if met else 'NOT met'}")  # fmt: skip
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
