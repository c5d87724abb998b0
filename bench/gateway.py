"""Gateway overhead: chat completions against a fast local upstream (bench/fast_upstream.py),
called directly, through the storefront's gateway (portal.asgi served by the Procfile's web
command, one process: key check, limits and budget in Redis, usage queued) and through the
LiteLLM proxy configured on the same upstream (one worker), all on this machine in the same
run. Prints the added latency p50/p99 (sequential requests) and the most requests per second
with one worker (concurrent load). Targets: added p50 <= 1 ms, p99 <= 5 ms; >= 5x LiteLLM's
requests per second. `--web` replaces the Procfile's web command to compare servers.

    python -m portal.embedded run -- .venv/bin/python bench/gateway.py [--requests 400]

It works in a scratch database (bench_gateway), so your data is untouched. LiteLLM comes from
PyPI (`pip install 'litellm[proxy]'`; make bench installs it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.loadgen import Connection, percentile
from bench.scratch import django_setup, process_environment, scratch_database

BODY = {"model": "fast", "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--web", help="web command instead of the Procfile's (WEB_HOST/PORT)")
    args = parser.parse_args()
    django_setup()
    with scratch_database("bench_gateway"):
        return run(args)


def _wait(url: str, process, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[:2]} exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise TimeoutError(url)


def _split(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}", parts.path


async def latencies(url: str, headers: dict, count: int) -> list[float]:
    """Sequential requests on one keep-alive connection (the lean client of bench/loadgen.py
    for every path, so what it costs is the same in each and cancels out of "added")."""
    base, path = _split(url)
    conn = await Connection(base, headers).open()
    request = conn.prepare("POST", path, BODY)
    try:
        for _ in range(20):  # warm up (connections, caches)
            assert (await conn.send(request))[0] == 200
        samples = []
        for _ in range(count):
            started = time.perf_counter()
            status, _ = await conn.send(request)
            samples.append((time.perf_counter() - started) * 1000)
            assert status == 200, status
    finally:
        conn.close()
    return samples


async def throughput(url: str, headers: dict, seconds: float, concurrency: int) -> float:
    done, failed = 0, 0
    deadline = time.perf_counter() + seconds
    base, path = _split(url)

    async def worker():
        nonlocal done, failed
        conn = await Connection(base, headers).open()
        request = conn.prepare("POST", path, BODY)
        try:
            while time.perf_counter() < deadline:
                if (await conn.send(request))[0] == 200:
                    done += 1
                else:
                    failed += 1
        finally:
            conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    if failed:
        print(f"    ({failed} failed requests at {url})")
    return done / (time.perf_counter() - started)


def run(args) -> int:
    from catalog.gateway.keys import inference_key_create
    from portal import stack
    from portal.embedded import free_port
    from portal.services.accounts import user_create
    from portal.services.audit import Actor

    upstream_port, litellm_port = free_port(), free_port()
    upstream = f"http://127.0.0.1:{upstream_port}/v1"
    owner = user_create(
        username="bench", email="bench@example.com", password="bench-password-1",
        organization_name="Bench", email_verified=True,
    )  # fmt: skip
    _, secret = inference_key_create(
        by=owner.memberships.get(), name="bench", actor=Actor(user=owner),
        rpm=1_000_000, tpm=100_000_000,
    )  # fmt: skip
    env = process_environment(
        INFERENCE_MODELS=json.dumps({"fast": {"kind": "chat", "upstreams": [upstream]}}),
        TOKEN_PRICES=json.dumps({"fast": {"input": "0.05", "output": "0.10"}}),
    )
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as processes:
        logs = Path(tmp)
        fast = stack.spawn(
            processes,
            [stack.BIN / "uvicorn", "bench.fast_upstream:app", "--port", str(upstream_port),
             "--log-level", "warning", "--no-access-log"],
            env=env, log=logs / "upstream.log",
        )  # fmt: skip
        _wait(f"{upstream}/models", fast)
        web_url, _, _ = stack.web_and_worker(processes, env=env, logs=logs, command=args.web)
        print(f"web: {stack.web_command(args.web)}")
        config = logs / "litellm.yaml"
        config.write_text(
            "model_list:\n  - model_name: fast\n    litellm_params:\n"
            f"      model: openai/fast\n      api_base: {upstream}\n      api_key: none\n"
            "litellm_settings:\n  drop_params: true\n"
        )
        # LiteLLM on its own: no database (ours is not its), no model price map fetched from
        # the internet (its bundled copy), errors only.
        litellm_env = {k: v for k, v in env.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        master = "sk-" + uuid.uuid4().hex  # LiteLLM checks a key too, as the gateway does
        litellm_env |= {
            "LITELLM_LOG": "ERROR", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_MASTER_KEY": master,
        }  # fmt: skip
        litellm = stack.spawn(
            processes,
            [stack.BIN / "litellm", "--config", str(config), "--port", str(litellm_port),
             "--num_workers", "1"],
            env=litellm_env, log=logs / "litellm.log",
        )  # fmt: skip
        _wait(f"http://127.0.0.1:{litellm_port}/health/liveliness", litellm, timeout=180)
        targets = {
            "direct": (f"{upstream}/chat/completions", {}),
            "gateway": (f"{web_url}/v1/chat/completions", {"Authorization": f"Bearer {secret}"}),
            "litellm": (f"http://127.0.0.1:{litellm_port}/v1/chat/completions",
                        {"Authorization": f"Bearer {master}"}),
        }  # fmt: skip
        results = {}
        for name, (url, headers) in targets.items():
            samples = asyncio.run(latencies(url, headers, args.requests))
            rps = asyncio.run(throughput(url, headers, args.seconds, args.concurrency))
            results[name] = (statistics.median(samples), percentile(samples, 0.99), rps)

    print(f"\nchat completion against a fast local upstream, {args.requests} sequential requests"
          f" and {args.seconds:.0f} s at {args.concurrency} concurrent:\n")  # fmt: skip
    print(f"  {'path':<10} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}")
    for name, (p50, p99, rps) in results.items():
        print(f"  {name:<10} {p50:8.2f} {p99:8.2f} {rps:8.0f}")
    direct, gateway, lite = results["direct"], results["gateway"], results["litellm"]
    added = (gateway[0] - direct[0], gateway[1] - direct[1])
    added_lite = (lite[0] - direct[0], lite[1] - direct[1])
    ratio = gateway[2] / lite[2]
    print(f"\n  added by the gateway: p50 {added[0]:.2f} ms, p99 {added[1]:.2f} ms "
          f"(LiteLLM: p50 {added_lite[0]:.2f} ms, p99 {added_lite[1]:.2f} ms)")  # fmt: skip
    met = added[0] <= 1 and added[1] <= 5 and ratio >= 5
    print(f"  gateway / LiteLLM requests per second = {ratio:.1f}x (target >= 5); added p50 "
          f"target <= 1 ms, p99 <= 5 ms: {'met' if met else 'NOT met'}")  # fmt: skip
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
