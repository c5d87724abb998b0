"""Start the storefront's own processes (a Daphne web server, a Celery worker) as real child
processes, for the browser tests and the benchmarks."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from portal.embedded import free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310  (a loopback URL we built)
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer in {timeout}s")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def spawn(stack: contextlib.ExitStack, args: list, *, env: dict, log: Path) -> subprocess.Popen:
    """Start a process logging to `log`; it is stopped when `stack` closes."""
    log.parent.mkdir(parents=True, exist_ok=True)
    output = stack.enter_context(open(log, "w"))  # noqa: SIM115  (closed by the stack)
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    stack.callback(stop, proc)
    return proc


def web_and_worker(
    stack: contextlib.ExitStack, *, env: dict, logs: Path
) -> tuple[str, subprocess.Popen, subprocess.Popen]:
    """A web server on a free loopback port and a one-process worker; returns (url, web, worker)
    once the web server answers /healthz."""
    port = free_port()
    web = spawn(
        stack,
        [BIN / "daphne", "-b", "127.0.0.1", "-p", str(port), "portal.asgi:application"],
        env=env,
        log=logs / "web.log",
    )
    worker = spawn(
        stack,
        [BIN / "celery", "-A", "portal", "worker", "--pool=solo", "--loglevel=info",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        env=env,
        log=logs / "worker.log",
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/healthz", web)
    return url, web, worker
