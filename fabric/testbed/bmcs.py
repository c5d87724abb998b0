"""The BMC test bed: the sushy-tools Redfish emulator with its fake driver, one system per
node, behind HTTP basic auth, on loopback. Power changes take the emulator 1-11 s, as real
BMCs take a while. Used by the order tests, the order benchmark and `make run`."""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import bcrypt

from fabric.power.base import BmcAccess

NAMESPACE = uuid.UUID("5f0c2d8e-6a3b-4c1e-9d7a-2b8e4f6a1c30")
USERNAME = "admin"
PASSWORD_VARIABLE = "STOREFRONT_TESTBED_BMC_PASSWORD"  # noqa: S105  (a variable name)


def system_uuid(name: str) -> str:
    return str(uuid.uuid5(NAMESPACE, name))


@dataclass
class Emulator:
    url: str
    process: subprocess.Popen
    password: str

    def system_id(self, name: str) -> str:
        return f"/redfish/v1/Systems/{system_uuid(name)}"

    def access(self, name: str) -> BmcAccess:
        """How to reach the system `name` (for a power driver or `power_state`)."""
        return BmcAccess(self.url, self.system_id(name), USERNAME, self.password)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start(
    *, names: list[str], port: int, directory: Path, password: str, log: Path | None = None
) -> Emulator:
    """Start the emulator with one powered-off system per name; returns once it answers."""
    directory.mkdir(parents=True, exist_ok=True)
    systems = [{"uuid": system_uuid(n), "name": n, "power_state": "Off", "nics": []} for n in names]
    auth = directory / "htpasswd"
    digest = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    auth.write_text(f"{USERNAME}:{digest}\n")
    config = directory / "emulator.conf"
    config.write_text(
        "SUSHY_EMULATOR_FAKE_DRIVER = True\n"
        f"SUSHY_EMULATOR_FAKE_SYSTEMS = {json.dumps(systems)}\n"
        f"SUSHY_EMULATOR_STATE_DIR = {str(directory / 'state')!r}\n"
        f"SUSHY_EMULATOR_AUTH_FILE = {str(auth)!r}\n"
    )
    output = open(log or directory / "emulator.log", "w")  # noqa: SIM115  (the child keeps it)
    process = subprocess.Popen(
        [
            Path(sys.executable).parent / "sushy-emulator",
            "--config",
            str(config),
            "--interface",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"sushy-emulator exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url + "/redfish/v1/", timeout=2):  # noqa: S310  (loopback)
                break
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise TimeoutError("sushy-emulator did not answer in 30 s") from None
            time.sleep(0.1)
    return Emulator(url=url, process=process, password=password)


def power_state(access: BmcAccess, *, timeout: float = 2.0) -> str:
    """The system's PowerState as Redfish says it, in lower case ("on", "off", ...), in one
    GET (the lab's power watcher reads it several times a second; the production driver's
    sushy client would make three requests). An empty system id means the BMC's only system.
    Raises OSError (urllib's errors among them) when the BMC does not answer or refuses."""
    token = base64.b64encode(f"{access.username}:{access.password}".encode()).decode()
    context = None
    if access.url.startswith("https:") and not access.verify_tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE

    def get(path: str) -> dict:
        request = urllib.request.Request(  # noqa: S310  (a BMC URL from the inventory)
            access.url + path,
            headers={"Authorization": f"Basic {token}", "Accept": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=timeout, context=context) as answer:  # noqa: S310
            return json.load(answer)

    system_id = access.system_id
    if not system_id:
        members = get("/redfish/v1/Systems").get("Members", [])
        if len(members) != 1:
            raise OSError(f"the BMC at {access.url} has {len(members)} systems, not one")
        system_id = members[0]["@odata.id"]
    return str(get(system_id).get("PowerState", "")).lower()
