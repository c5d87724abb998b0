"""Start JupyterHub (deploy/jupyterhub/jupyterhub_config.py) with configurable-http-proxy from
npm, for `make run` (manage.py jupyterhub_run) and the tests (one hub per test session)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from portal.embedded import free_port

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy" / "jupyterhub" / "jupyterhub_config.py"
CHP = ROOT / "node_modules" / ".bin" / "configurable-http-proxy"
BIN = Path(sys.executable).parent


@dataclass
class Hub:
    url: str
    process: subprocess.Popen

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def hub_environment(
    *, url: str, portal_url: str, token: str, client_id: str, client_secret: str, data: Path
) -> dict:
    return {
        **os.environ,
        "STOREFRONT_HUB_URL": url,
        "STOREFRONT_PORTAL_URL": portal_url,
        "STOREFRONT_HUB_TOKEN": token,
        "STOREFRONT_HUB_CLIENT_ID": client_id,
        "STOREFRONT_HUB_CLIENT_SECRET": client_secret,
        "STOREFRONT_HUB_DATA": str(data),
        "STOREFRONT_HUB_INTERNAL_PORT": str(free_port()),
        "STOREFRONT_HUB_PROXY_API_PORT": str(free_port()),
        "STOREFRONT_CHP": str(CHP),
        "STOREFRONT_SINGLEUSER": str(BIN / "jupyterhub-singleuser"),
        "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
    }


def start(*, env: dict, log: Path, timeout: float = 60) -> Hub:
    """Start the hub with `env` (hub_environment) and wait until it answers."""
    data = Path(env["STOREFRONT_HUB_DATA"])
    data.mkdir(parents=True, exist_ok=True)
    (data / "home").mkdir(exist_ok=True)
    output = open(log, "w")  # noqa: SIM115  (the child keeps it)
    process = subprocess.Popen(
        [BIN / "jupyterhub", "-f", str(CONFIG)], cwd=data, env=env, stdout=output,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = env["STOREFRONT_HUB_URL"]
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"jupyterhub exited with {process.returncode}; see {log}")
        try:
            with urllib.request.urlopen(f"{url}/hub/health", timeout=2):  # noqa: S310  (loopback)
                return Hub(url=url, process=process)
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise TimeoutError(f"jupyterhub did not answer in {timeout}s; see {log}") from None
            time.sleep(0.2)
