"""Start JupyterHub (deploy/jupyterhub/jupyterhub_config.py) with configurable-http-proxy from
npm, for `make run` (manage.py jupyterhub_run) and the tests (one hub per test session)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from catalog.notebooks import sandbox
from portal.embedded import VAR_DIR, free_port

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy" / "jupyterhub" / "jupyterhub_config.py"
CHP = ROOT / "node_modules" / ".bin" / "configurable-http-proxy"
BIN = Path(sys.executable).parent


NOTEBOOK_ENV = Path(os.environ.get("STOREFRONT_NOTEBOOK_ENV", ROOT / ".venv-notebook"))
# Debian's tools (useradd, nft, mount, unshare) and node for configurable-http-proxy.
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class Hub:
    url: str
    process: subprocess.Popen
    config: dict
    remove_accounts: bool = False

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        sandbox.firewall_remove(prefix=self.config["account_prefix"])
        if self.remove_accounts:
            sandbox.accounts_remove(
                prefix=self.config["account_prefix"], homes=Path(self.config["homes"])
            )


def hub_config(
    *,
    url: str,
    portal_url: str,
    token: str,
    client_id: str,
    client_secret: str,
    data: Path,
    account_prefix: str = "sfnb",
) -> dict:
    """Everything jupyterhub_config.py reads. It reaches the hub in a root-only file, never
    through the environment, which the hub's children would inherit."""
    return {
        "url": url,
        "portal_url": portal_url,
        "token": token,
        "client_id": client_id,
        "client_secret": client_secret,
        "data": str(data),
        "internal_port": free_port(),
        "proxy_api_port": free_port(),
        "chp": str(CHP),
        "singleuser": str(NOTEBOOK_ENV / "bin" / "jupyterhub-singleuser"),
        "launcher": [sys.executable, "-m", "catalog.notebooks.sandbox"],
        "account_prefix": account_prefix,
        "homes": str(Path("/home") / account_prefix),
        # Hidden from notebooks besides /run and /tmp: the embedded servers' data and sockets,
        # localstripe's state, outgoing mail, the hub's own state.
        "masks": sorted({str(VAR_DIR), str(data)}),
    }


def start(*, config: dict, log: Path, timeout: float = 60, remove_accounts: bool = False) -> Hub:
    """Start the hub with `config` (hub_config) and wait until it answers."""
    sandbox.require_root()
    singleuser = Path(config["singleuser"])
    if not singleuser.exists():
        raise sandbox.SandboxError(f"{singleuser} is missing: `make install` builds it")
    sandbox.reachable_by_others(singleuser, "the notebook environment")
    homes = Path(config["homes"])
    sandbox.homes_prepare(homes)
    gid = sandbox.group_ensure(config["account_prefix"])
    sandbox.firewall_apply(
        prefix=config["account_prefix"], gid=gid, hub_api_port=config["internal_port"]
    )
    data = Path(config["data"])
    data.mkdir(parents=True, exist_ok=True)
    data.chmod(0o700)
    secrets_file = data / "hub-config.json"
    secrets_file.touch(mode=0o600)
    secrets_file.chmod(0o600)
    secrets_file.write_text(json.dumps(config))
    env = {
        "PATH": f"{BIN}:{SYSTEM_PATH}",
        "LANG": "C.UTF-8",
        "HOME": str(data),
        "STOREFRONT_HUB_CONFIG": str(secrets_file),
    }
    output = open(log, "w")  # noqa: SIM115  (the child keeps it)
    process = subprocess.Popen(
        [BIN / "jupyterhub", "-f", str(CONFIG)],
        cwd=data,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    hub = Hub(url=config["url"], process=process, config=config, remove_accounts=remove_accounts)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            hub.stop()
            raise RuntimeError(f"jupyterhub exited with {process.returncode}; see {log}")
        try:
            with urllib.request.urlopen(f"{hub.url}/hub/health", timeout=2):  # noqa: S310
                return hub
        except OSError:
            if time.monotonic() > deadline:
                hub.stop()
                raise TimeoutError(f"jupyterhub did not answer in {timeout}s; see {log}") from None
            time.sleep(0.2)
