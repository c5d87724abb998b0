"""Start the storefront's own processes (the web server exactly as the Procfile runs it, a Celery
worker) as real child processes, for the live-server tests and the benchmarks."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from portal.embedded import free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    """Wait until `url` answers 2xx; a timeout says what the last try got (a refused
    connection, or a 503 and the page that explains it)."""
    deadline, last = time.monotonic() + timeout, "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310  (a loopback URL we built)
                return
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}: {exc.read()[:1000].decode(errors='replace')}"
        except OSError as exc:
            last = repr(exc)
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer in {timeout}s; last try: {last}")


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


def web_command(command: str | None = None) -> str:
    """The Procfile's `web:` command line (or `command`, to compare servers), which reads its
    address from WEB_HOST and WEB_PORT: tests and benchmarks serve what production serves."""
    if command:
        return command
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name.strip() == "web":
            return rest.strip()
    raise LookupError("the Procfile has no web: line")


def web(
    stack: contextlib.ExitStack,
    *,
    env: dict,
    logs: Path,
    command: str | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
    log_name: str = "web.log",
) -> tuple[str, subprocess.Popen]:
    """The web server on `host` (loopback) and `port` (a free one); returns (url, process) once
    it answers /healthz. It runs under bash as honcho runs it, with the virtualenv's bin first
    on PATH."""
    port = port or free_port()
    env = {
        **env,
        "WEB_HOST": host,
        "WEB_PORT": str(port),
        "PATH": f"{BIN}:{env.get('PATH', '')}",
    }
    argv = ["bash", "-c", "exec " + web_command(command)]
    proc = spawn(stack, argv, env=env, log=logs / log_name)
    url = f"http://{host}:{port}"
    wait_http(url + "/healthz", proc)
    return url, proc


def web_and_worker(
    stack: contextlib.ExitStack, *, env: dict, logs: Path, command: str | None = None
) -> tuple[str, subprocess.Popen, subprocess.Popen]:
    """The web server (`web`, below) and a one-process worker; returns (url, web, worker) once
    the web server answers /healthz."""
    worker = spawn(
        stack,
        [
            BIN / "celery",
            "-A",
            "portal",
            "worker",
            "--pool=solo",
            "--loglevel=info",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        env=env,
        log=logs / "worker.log",
    )
    url, server = web(stack, env=env, logs=logs, command=command)
    return url, server, worker
