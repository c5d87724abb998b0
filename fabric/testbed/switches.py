"""Real SSH switch peers: FakeNOS devices that accept, record and save configuration.

From Python (tests)::

    from fabric.testbed.switches import SwitchSpec, start_switches

    with start_switches([SwitchSpec("leaf1", "arista_eos")], state_dir=tmp_path) as switches:
        dev = switches["leaf1"]          # .name .device_type .host .port .username .password
        ConnectHandler(**dev.netmiko())  # real SSH
        switches.running_lines("leaf1")  # what the switch recorded, without SSH
        switches.set_reject("leaf1", ["vlan 666"])  # refuse lines containing "vlan 666"

All devices run in ONE background process (``python -m fabric.testbed.switches --serve …``)
on free ports of 127.0.0.1; everything it writes (inventory, per-device state, log) stays
under ``state_dir``.

For ``make run`` (a Procfile line)::

    python -m fabric.testbed.switches --port-base 7000 --count-per-vendor 1 \\
        --state-dir var/switches --inventory var/switches/inventory.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

USERNAME = "admin"
PASSWORD = "fakenos-test-peer"  # noqa: S105 - fixed credential of a local test peer
DEFAULT_PLATFORMS = ("arista_eos", "cisco_nxos", "juniper_junos", "dell_sonic")
SHORT = {
    "arista_eos": "eos",
    "cisco_nxos": "nxos",
    "juniper_junos": "junos",
    "dell_sonic": "sonic",
    "cisco_ios": "ios",
}


@dataclass(frozen=True)
class SwitchSpec:
    """One device to start. ``platform`` is the netmiko device_type it emulates; ``port`` 0
    picks a free one; lines containing any ``reject`` token are refused (see set_reject)."""

    name: str
    platform: str
    port: int = 0
    reject: tuple[str, ...] = ()


@dataclass(frozen=True)
class Switch:
    """A running device, as netmiko needs it."""

    name: str
    device_type: str
    host: str
    port: int
    username: str
    password: str = field(repr=False)
    state_dir: str = ""

    def netmiko(self, **extra: Any) -> dict[str, Any]:
        params = {
            "device_type": self.device_type,
            "host": self.host,
            "port": self.port,
            "username": self.username,
            "password": self.password,
            "allow_agent": False,
            "use_keys": False,
        }
        return {**params, **extra}


class RunningSwitches:
    """Handle on the background FakeNOS process; a mapping of name -> :class:`Switch`."""

    def __init__(self, proc: subprocess.Popen, switches: list[Switch], state_dir: Path) -> None:
        self.proc = proc
        self.switches = {s.name: s for s in switches}
        self.state_dir = state_dir

    def __getitem__(self, name: str) -> Switch:
        return self.switches[name]

    def __iter__(self):
        return iter(self.switches.values())

    def __len__(self) -> int:
        return len(self.switches)

    def __enter__(self) -> RunningSwitches:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _dir(self, name: str) -> Path:
        return Path(self.switches[name].state_dir)

    def state(self, name: str) -> dict[str, Any]:
        """The device's recorded state: running/startup config, saved flag, save count."""
        return json.loads((self._dir(name) / "state.json").read_text())

    def running_lines(self, name: str) -> list[str]:
        """Running config as lines (sub-mode lines indented; Junos as ``set`` lines)."""
        return self.state(name)["running_lines"]

    def set_reject(self, name: str, tokens: list[str] | tuple[str, ...]) -> None:
        """Make ``name`` refuse any later line containing one of ``tokens`` (Junos: refuse the
        commit). Takes effect on the next line, also inside an open session."""
        write_atomic(self._dir(name) / "reject", "".join(f"{t}\n" for t in tokens))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def start_switches(
    specs: list[SwitchSpec], state_dir: str | os.PathLike[str], timeout: float = 30.0
) -> RunningSwitches:
    """Start every device of ``specs`` in one background process and wait until each answers
    SSH. All files go under ``state_dir``. The process exits with its parent."""
    state = Path(state_dir)
    state.mkdir(parents=True, exist_ok=True)
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError("switch names must be unique")
    config = state / "specs.json"
    inventory = state / "inventory.json"
    inventory.unlink(missing_ok=True)
    write_atomic(config, json.dumps([asdict(s) for s in specs]))
    log_file = (state / "fakenos.log").open("ab")
    cmd = [sys.executable, "-m", "fabric.testbed.switches", "--serve", str(config)]
    cmd += ["--state-dir", str(state), "--inventory", str(inventory), "--exit-with-parent"]
    proc = subprocess.Popen(
        cmd,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=Path(__file__).resolve().parents[2],
    )
    log_file.close()
    deadline = time.monotonic() + timeout
    try:
        while not inventory.exists():
            if proc.poll() is not None:
                tail = (state / "fakenos.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"FakeNOS process exited ({proc.returncode}):\n{tail}")
            if time.monotonic() > deadline:
                raise TimeoutError("FakeNOS switches did not start")
            time.sleep(0.05)
        switches = [Switch(**d) for d in json.loads(inventory.read_text())["switches"]]
        for sw in switches:
            wait_for_ssh(sw.host, sw.port, deadline)
    except BaseException:
        proc.kill()
        proc.wait(5)
        raise
    return RunningSwitches(proc, switches, state)


def wait_for_ssh(host: str, port: int, deadline: float) -> None:
    """Wait until the port sends an SSH identification string."""
    while True:
        try:
            with socket.create_connection((host, port), timeout=1) as sock:
                if sock.recv(8).startswith(b"SSH-"):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"no SSH on {host}:{port}")
        time.sleep(0.05)


# --------------------------------------------------------------------------------------------
# The background process
# --------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_fakenos(specs: list[SwitchSpec], state_dir: Path):
    """A FakeNOS instance with our server, shell and one recording NOS per device."""
    from fakenos import FakeNOS
    from fakenos.core.nos import Nos

    from fabric.testbed.fakenos_peer import PLATFORMS, RecordingSshServer, SwitchState, make_shell

    hosts: dict[str, Any] = {}
    plugins: list[Nos] = []
    for spec in specs:
        platform = PLATFORMS[spec.platform]
        device_dir = state_dir / spec.name
        device_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(device_dir / "reject", "".join(f"{t}\n" for t in spec.reject))
        nos = Nos(name=f"recording-{spec.name}", initial_prompt="{base_prompt}#")
        nos.device = SwitchState(spec.name, platform, device_dir)
        plugins.append(nos)
        hosts[spec.name] = {
            "port": spec.port or _free_port(),
            "username": USERNAME,
            "password": PASSWORD,
            "nos": {"plugin": nos.name},
        }
    inventory = {
        "default": {
            "server": {
                "plugin": "ParamikoSshServer",
                "configuration": {"address": "127.0.0.1", "timeout": 1},
            },
            "shell": {"plugin": "CMDShell"},
        },
        "hosts": hosts,
    }
    net = FakeNOS(inventory=inventory, plugins=plugins)
    # The inventory schema only names FakeNOS's own plugins; swap in ours for this instance.
    net.servers_plugins = {**net.servers_plugins, "ParamikoSshServer": RecordingSshServer}
    net.shell_plugins = {**net.shell_plugins, "CMDShell": make_shell}
    return net


def serve(
    specs: list[SwitchSpec],
    state_dir: Path,
    inventory_path: Path,
    exit_with_parent: bool = False,
) -> None:
    """Run the devices until SIGTERM/SIGINT (or the parent's exit), writing the inventory."""
    state_dir.mkdir(parents=True, exist_ok=True)
    for attempt in range(5):
        net = build_fakenos(specs, state_dir)
        try:
            net.start()
            break
        except OSError:  # a chosen free port was taken meanwhile
            with contextlib.suppress(Exception):
                net.stop()
            if attempt == 4 or any(s.port for s in specs):
                raise
    from fabric.testbed.fakenos_peer import PLATFORMS

    switches = [
        Switch(
            name=h.name,
            device_type=PLATFORMS[h.nos.device.platform.device_type].device_type,
            host="127.0.0.1",
            port=h.port,
            username=h.username,
            password=h.password,
            state_dir=str((state_dir / h.name).resolve()),
        )
        for h in net.hosts.values()
    ]
    data = {"pid": os.getpid(), "switches": [asdict(s) for s in switches]}
    inventory_path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(inventory_path, json.dumps(data, indent=1), mode=0o600)
    summary = ", ".join(f"{s.name}={s.device_type}@{s.port}" for s in switches)
    print(f"FakeNOS switches up: {summary}; inventory {inventory_path}", flush=True)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    parent = os.getppid()
    while not stop.wait(0.5):
        if exit_with_parent and os.getppid() != parent:
            break
    # FakeNOS stops hosts one after another (~2 s each); stop them all at once. Every
    # configuration change is already on disk.
    stoppers = [threading.Thread(target=h.stop, daemon=True) for h in net.hosts.values()]
    for t in stoppers:
        t.start()
    for t in stoppers:
        t.join(5)
    os._exit(0)


def specs_for(
    platforms: list[str], count: int, port_base: int, reject: list[str]
) -> list[SwitchSpec]:
    specs = []
    for i, platform in enumerate(platforms):
        for n in range(count):
            port = port_base + i * count + n if port_base else 0
            specs.append(
                SwitchSpec(f"{SHORT.get(platform, platform)}{n + 1}", platform, port, tuple(reject))
            )
    return specs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", metavar="SPECS_JSON", help="(internal) specs file to run")
    parser.add_argument("--port-base", type=int, default=0, help="first port; 0 = free ports")
    parser.add_argument("--count-per-vendor", type=int, default=1)
    parser.add_argument("--platforms", default=",".join(DEFAULT_PLATFORMS))
    parser.add_argument("--reject", action="append", default=[], help="reject token (repeatable)")
    parser.add_argument("--state-dir", default="var/switches")
    parser.add_argument("--inventory", default=None, help="default: STATE_DIR/inventory.json")
    parser.add_argument("--exit-with-parent", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("paramiko").setLevel(logging.CRITICAL)
    state_dir = Path(args.state_dir)
    inventory = Path(args.inventory) if args.inventory else state_dir / "inventory.json"
    if args.serve:
        specs = [
            SwitchSpec(**{**d, "reject": tuple(d["reject"])})
            for d in json.loads(Path(args.serve).read_text())
        ]
    else:
        platforms = [p.strip() for p in args.platforms.split(",") if p.strip()]
        specs = specs_for(platforms, args.count_per_vendor, args.port_base, args.reject)
    serve(specs, state_dir, inventory, exit_with_parent=args.exit_with_parent)


if __name__ == "__main__":
    main()
