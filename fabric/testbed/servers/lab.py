"""Lab servers: each one a GPU server of the lab, as namespaces on this machine (root only).

* The chassis: a network namespace ``<prefix>-<name>``, there as long as the lab is. Its
  provisioning NIC ``eno1`` is cabled by a veth to the bridge ``prov0`` of the provisioning
  namespace ``<prefix>-prov``, where the portal's dnsmasq answers (see `LabServers` for where
  the provisioning server's address lives). Tenant NICs (``eth0``, ...) are cabled to a lab
  leaf with ``cable()``. A NIC's MAC is the inventory's when the server's spec gives it, else
  derived from the server's name (``nic_mac``). NICs are down until the server's OS brings
  them up.
* The disk: ``<root>/<name>/disk/{etc,etc-ssh,root,home,var,tmp}``, bind-mounted over /etc,
  /etc/ssh, /root, /home, /var and /tmp inside the server. It keeps its files across power
  cycles; ``wipe()`` erases it (cleaning). A blank disk is imaged at power on: /etc is a copy of
  the host's without /etc/ssh (so user accounts made inside stay inside), /etc/ssh starts
  empty (no host keys: the boot makes fresh ones), the rest hold the usual empty folders.
  Everything else (/usr, /opt, ...) is the host's: the lab's OS image.
* Power: ``power_on()`` starts ``init.py`` as PID 1 of new PID, mount, UTS and IPC namespaces
  inside the chassis (``unshare``); it mounts the disk and a fresh /run, then runs the boot
  command (``boot``: by default a placeholder that logs to /var/log/boot.log and sleeps;
  ``STANDIN_BOOT`` is the lab's stand-in for an OS image, boot.py: DHCP, iPXE, the NoCloud
  seed, sshd and cloud-init's phone home). ``power_off()`` SIGKILLs that init: the kernel kills
  every process of the PID namespace, its private mounts vanish with it, and the NICs lose
  their addresses, as when the plug is pulled. The console (init's and the boot's output) is
  ``<root>/<name>/console.log``.

The BMC side is ``watcher.PowerWatcher``: it follows the emulator's power state. Commands run
as argument lists (``ip``, ``unshare``, ``nsenter``), never a shell; names are validated, and
every ``ip`` command is recorded in ``commands`` like the linux test bed's.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import ipaddress
import json
import os
import re
import secrets
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from fabric.networks import safe
from fabric.testbed.linux import COMMAND_TIMEOUT_S, LinuxTestbedError

# The defaults of the portal's settings (PROVISIONING_INTERFACE_NAMES, PROVISIONING_INTERFACE,
# PROVISIONING_PREFIX), so that dnsmasq finds the lab as it would a data center.
PROVISIONING_NIC = "eno1"
PROVISIONING_BRIDGE = "prov0"
PROVISIONING_NETWORK = "10.99.0.0/24"
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
TENANT_MTU = 1500
# Disk folder -> where it is mounted in the server, in mount order (/etc before /etc/ssh).
DISK_MOUNTS = (
    ("etc", "/etc"),
    ("etc-ssh", "/etc/ssh"),
    ("root", "/root"),
    ("home", "/home"),
    ("var", "/var"),
    ("tmp", "/tmp"),  # noqa: S108  (the server's own /tmp)
)
DEFAULT_HOSTNAME = "localhost"  # what a fresh image calls itself until the boot names it
PLACEHOLDER_BOOT = (
    "/bin/sh",
    "-c",
    'mkdir -p /var/log && echo "$(date -u +%FT%TZ) $LAB_SERVER_NAME booted (lab placeholder)"'
    " >> /var/log/boot.log && exec sleep infinity",
)
# The lab's stand-in for an OS image (boot.py: DHCP, iPXE, NoCloud, sshd, phone home). Init puts
# it in the server's /run/lab at power on, as firmware loads a boot image into memory: the
# checkout may lie under a folder the server's disk covers. Debian's python3 runs it (an OS
# image has its own; this process's may live under /root).
STANDIN_SOURCE = Path(__file__).with_name("boot.py")
STANDIN_BOOT = ("/usr/bin/python3", "-I", "-S", "/run/lab/boot.py")
# The rest of the lab's OS image: the environment `make` builds in the checkout for customers'
# code (JupyterLab, Ray). Init binds it read-only at IMAGE_AT in every server, whatever folder
# the checkout lies under (the server's disk covers /root, /home, /tmp and /var).
IMAGE = Path(__file__).resolve().parents[3] / ".venv-notebook"
IMAGE_AT = "/run/lab/image"
IMAGE_PYTHON = f"{IMAGE_AT}/bin/python"
BOOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
POWER_ON_TIMEOUT_S = 20
INIT = Path(__file__).with_name("init.py")
_IFNAME = re.compile(r"^[a-z][a-z0-9_-]{0,14}$")
_TOOLS = {t: shutil.which(t) or f"/usr/bin/{t}" for t in ("ip", "unshare", "nsenter")}


class LabServerError(RuntimeError):
    """A lab server could not be built, powered or reached; the message says what happened."""


def nic_mac(server: str, index: int = 0) -> str:
    """The MAC of a server's NIC `index` (0: the provisioning NIC, 1 + j: eth<j>): locally
    administered, unicast, the same for a name on every run and machine."""
    digest = hashlib.sha256(safe.name(server).encode()).digest()
    return "0e:" + ":".join(f"{b:02x}" for b in digest[:4]) + f":{index:02x}"


def _nic_index(nic: str) -> int:
    """0 for the provisioning NIC, 1 + j for eth<j>."""
    if nic == PROVISIONING_NIC:
        return 0
    if re.fullmatch(r"eth[0-9]{1,2}", nic):
        return 1 + int(nic[3:])
    raise safe.UnsafeValue(f"{nic!r} is not a lab server NIC ({PROVISIONING_NIC}, eth0, ...).")


def _ifname(value: str) -> str:
    if not isinstance(value, str) or not _IFNAME.fullmatch(value):
        raise safe.UnsafeValue(f"{value!r} is not an allowed interface name.")
    return value


def _ns_inode(path: str) -> str:
    """'net:[4026532...]' for a namespace file (/run/netns/X or /proc/PID/ns/net)."""
    if path.startswith("/proc/"):
        return os.readlink(path)
    return f"net:[{os.stat(path).st_ino}]"


def _pids_with(kind: str, inodes: set[str]) -> list[int]:
    """Processes of this machine in any of the namespaces `inodes` ('pid:[N]', 'net:[N]')."""
    found = []
    if not inodes:
        return found
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if os.readlink(f"/proc/{entry.name}/ns/{kind}") in inodes:
                    found.append(int(entry.name))
            except OSError:
                pass  # gone meanwhile, or a kernel thread
    return found


def _kill(pids: Iterable[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


class _Commands:
    """Runs and records `ip` commands, failing with the linux test bed's error."""

    def __init__(self) -> None:
        self.log: list[tuple[str, ...]] = []
        self._lock = threading.Lock()

    def __call__(self, *argv, check: bool = True) -> subprocess.CompletedProcess:
        command = tuple(str(a) for a in argv)
        with self._lock:
            self.log.append(command)
        try:
            done = subprocess.run(
                (_TOOLS.get(command[0], command[0]), *command[1:]),
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise LinuxTestbedError(command, None, f"timed out after {exc.timeout} s") from exc
        if check and done.returncode != 0:
            raise LinuxTestbedError(command, done.returncode, done.stderr or done.stdout)
        return done

    def netns_add(self, ns: str) -> None:
        self("ip", "netns", "add", ns)
        self("ip", "-n", ns, "link", "set", "lo", "up")
        self(
            "ip", "netns", "exec", ns, "sysctl", "-q", "-w",
            "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1",
        )  # fmt: skip


@dataclass(frozen=True)
class ServerSpec:
    """What the lab builds a server as: its name (the inventory node's), its GPUs, and the
    MACs of NICs the inventory already knows (NIC name -> MAC; others get `nic_mac`)."""

    name: str
    gpu_model: str = ""
    gpus: int = 0
    macs: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self):
        safe.name(self.name)
        for nic, mac in self.macs.items():
            _nic_index(nic)
            if not isinstance(mac, str) or not _MAC.fullmatch(mac.lower()):
                raise safe.UnsafeValue(f"{mac!r} is not a MAC address.")


class LabServer:
    """One server of a `LabServers` lab; see the module's docstring."""

    def __init__(self, spec: ServerSpec, *, netns: str, root: Path, commands: _Commands):
        self.spec = spec
        self.name = spec.name
        self.netns = netns
        self.directory = root / spec.name
        self.disk = self.directory / "disk"
        self.console = self.directory / "console.log"
        self.boot: list[str] = list(PLACEHOLDER_BOOT)
        self.env: dict[str, str] = {}  # added to the boot command's environment
        self.hostname = DEFAULT_HOSTNAME
        self._commands = commands
        self._nics = [PROVISIONING_NIC]
        self._lock = threading.RLock()
        self._process: subprocess.Popen | None = None  # `unshare`, parent of the init
        self._init: psutil.Process | None = None
        self._pidns: str | None = None  # of the last boot

    def __repr__(self) -> str:
        return f"LabServer({self.name}, {'on' if self.powered else 'off'})"

    @property
    def gpu_model(self) -> str:
        return self.spec.gpu_model

    @property
    def provisioning_mac(self) -> str:
        return self.mac(PROVISIONING_NIC)

    def mac(self, nic: str) -> str:
        given = self.spec.macs.get(nic)
        return given.lower() if given else nic_mac(self.name, _nic_index(nic))

    @property
    def nics(self) -> tuple[str, ...]:
        return tuple(self._nics)

    # -- power ------------------------------------------------------------------------------

    @property
    def powered(self) -> bool:
        """On from the end of `power_on` to the end of `power_off`, like the power of a machine
        (whose OS may have crashed meanwhile: see `processes`)."""
        return self._process is not None

    def power_on(self) -> None:
        """Boots the server; returns once its disk is mounted and the boot command started.
        Does nothing when it is already on."""
        with self._lock:
            if self.powered:
                return
            self._image()
            read, write = os.pipe()
            config = {
                "disk": str(self.disk),
                "mounts": DISK_MOUNTS,
                "hostname": self.hostname,
                "info": self.info(),
                "boot": self.boot,
                "files": {"boot.py": STANDIN_SOURCE.read_text()},
                "image": str(IMAGE) if IMAGE.is_dir() else "",
                "env": self._boot_env(),
                "ready_fd": write,
            }
            command = [
                _TOOLS["ip"], "netns", "exec", self.netns,
                _TOOLS["unshare"], "--pid", "--fork", "--kill-child", "--mount-proc", "--uts",
                "--ipc", "--propagation", "private",
                "--", sys.executable, "-I", "-S", str(INIT), json.dumps(config),
            ]  # fmt: skip
            self.directory.mkdir(parents=True, exist_ok=True)
            try:
                with open(self.console, "ab") as console:
                    process = subprocess.Popen(
                        command,
                        stdin=subprocess.DEVNULL,
                        stdout=console,
                        stderr=subprocess.STDOUT,
                        pass_fds=(write,),
                        start_new_session=True,  # the operator's Ctrl-C is not a power cut
                        cwd="/",
                        env={"PATH": BOOT_PATH},
                    )
            except BaseException:
                os.close(read)
                raise
            finally:
                os.close(write)
            try:
                up = self._wait_up(read)
            finally:
                os.close(read)
            # `unshare` has exactly one child, the init, once it said it was up.
            children = psutil.Process(process.pid).children() if up else []
            if len(children) != 1:
                with contextlib.suppress(psutil.NoSuchProcess):
                    psutil.Process(process.pid).kill()  # --kill-child: the init goes too
                process.wait(10)
                raise LabServerError(f"{self.name} did not boot: {self.console_tail()}")
            self._init = children[0]
            self._pidns = os.readlink(f"/proc/{self._init.pid}/ns/pid")
            self._process = process  # last: `powered` is true once all is known

    def _wait_up(self, read: int) -> bool:
        deadline = time.monotonic() + POWER_ON_TIMEOUT_S
        received = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([read], [], [], 0.5)
            if ready:
                chunk = os.read(read, 16)
                if not chunk:
                    return False  # init ended before it was up
                received += chunk
                if b"up" in received:
                    return True
        return False

    def power_off(self) -> None:
        """Pulls the plug: every process of the server dies at once, its NICs lose their
        addresses. Does nothing when it is off."""
        with self._lock:
            process, init = self._process, self._init
            if process is None:
                return
            if process.poll() is None:
                with open(self.console, "a") as console:
                    console.write("[lab] power off: the plug is pulled\n")
                with contextlib.suppress(psutil.NoSuchProcess):
                    (init or psutil.Process(process.pid)).kill()
                try:
                    process.wait(10)  # `unshare` reaps the init once the kernel killed them all
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)
            # Anything else run inside the chassis (entered from outside) goes too.
            _kill(self.netns_pids())
            self._reset_nics()
            self._init = None
            self._process = None  # last: `powered` is false once all is done

    def _reset_nics(self) -> None:
        # A tenant NIC whose leaf went away (its namespace deleted) went with its cable.
        present = set(_links(self.netns))
        self._nics = [nic for nic in self._nics if nic in present]
        for nic in self._nics:
            self._commands("ip", "-n", self.netns, "addr", "flush", "dev", nic)
            self._commands("ip", "-n", self.netns, "link", "set", nic, "down")
        # The main table only: the local table holds the loopback's routes (127.0.0.0/8), and
        # without them nothing in the server can bind or reach 127.0.0.1.
        self._commands("ip", "-n", self.netns, "route", "flush", "table", "main", check=False)
        self._commands("ip", "-n", self.netns, "link", "set", "lo", "up")

    def processes(self) -> list[int]:
        """Host pids of the processes in the server's PID namespace (of its last boot)."""
        return _pids_with("pid", {self._pidns} if self._pidns else set())

    def netns_pids(self) -> list[int]:
        """Host pids of every process in the server's network namespace."""
        try:
            return _pids_with("net", {_ns_inode(f"/run/netns/{self.netns}")})
        except FileNotFoundError:
            return []

    # -- the disk ---------------------------------------------------------------------------

    def _image(self) -> None:
        """A blank disk gets the lab's image; a used one is left as it is."""
        if (self.disk / ".image").exists():
            return
        if self.disk.exists():  # a half-made image
            shutil.rmtree(self.disk)
        self.disk.mkdir(parents=True, mode=0o700)
        shutil.copytree(
            "/etc",
            self.disk / "etc",
            symlinks=True,
            ignore=lambda folder, names: ["ssh"] if Path(folder) == Path("/etc") else [],
        )
        (self.disk / "etc" / "ssh").mkdir()
        for sub, mode in (("etc-ssh", 0o755), ("root", 0o700), ("home", 0o755), ("tmp", 0o1777)):
            (self.disk / sub).mkdir()
            (self.disk / sub).chmod(mode)
        var = self.disk / "var"
        for sub in ("log", "lib", "cache", "spool", "tmp", "backups", "local"):
            (var / sub).mkdir(parents=True)
        (var / "tmp").chmod(0o1777)
        (var / "run").symlink_to("/run")
        (var / "lock").symlink_to("/run/lock")
        (self.disk / ".image").write_text("lab image: host /etc without /etc/ssh\n")

    def wipe(self) -> None:
        """Erases the disk (cleaning): the next boot finds a blank one and images it."""
        with self._lock:
            if self.powered:
                raise LabServerError(f"{self.name} is on: power it off before wiping its disk.")
            if self.disk.exists():
                shutil.rmtree(self.disk)

    # -- inside the server ------------------------------------------------------------------

    def info(self) -> dict:
        """What the server knows of its hardware (inside: /run/lab/server.json)."""
        return {
            "name": self.name,
            "gpu_model": self.spec.gpu_model,
            "gpus": self.spec.gpus,
            "nics": {nic: self.mac(nic) for nic in self._nics},
        }

    def _boot_env(self) -> dict[str, str]:
        return {
            "PATH": BOOT_PATH,
            "HOME": "/root",
            "LANG": "C.UTF-8",
            "LAB_SERVER_NAME": self.name,
            "LAB_PROVISIONING_NIC": PROVISIONING_NIC,
            "LAB_PROVISIONING_MAC": self.provisioning_mac,
            **self.env,
        }

    def run(self, argv: Sequence[str], *, timeout: float = 30, **kwargs):
        """Runs `argv` inside the powered server (all its namespaces, its root), as on its
        console; returns the CompletedProcess (text, output captured unless told)."""
        init = self._init
        if init is None:
            raise LabServerError(f"{self.name} is off.")
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        command = [
            _TOOLS["nsenter"], "--target", str(init.pid), "--mount", "--uts", "--ipc", "--net",
            "--pid", "--root", "--wd", "--", *argv,
        ]  # fmt: skip
        return subprocess.run(command, timeout=timeout, env=self._boot_env(), check=False, **kwargs)

    def console_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.console.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no console output)"

    # -- cables -----------------------------------------------------------------------------

    def cable(
        self, *, leaf_ns: str, leaf_if: str, nic: str = "eth0", bridge: str | None = None
    ) -> str:
        """Cables tenant NIC `nic` to a lab leaf: a veth whose other end `leaf_if` is made in
        the namespace `leaf_ns` (a leaf of the linux test bed, or any namespace), put in
        `bridge` there when given, and brought up. Returns `leaf_if`."""
        _nic_index(nic)
        safe.name(leaf_ns)
        _ifname(leaf_if)
        if nic in self._nics:
            raise LabServerError(f"{self.name} {nic} is already cabled.")
        self._commands(
            "ip", "-n", leaf_ns, "link", "add", leaf_if, "mtu", TENANT_MTU, "type", "veth",
            "peer", "name", nic, "address", self.mac(nic), "mtu", TENANT_MTU,
            "netns", self.netns,
        )  # fmt: skip
        if bridge is not None:
            self._commands("ip", "-n", leaf_ns, "link", "set", leaf_if, "master", _ifname(bridge))
        self._commands("ip", "-n", leaf_ns, "link", "set", leaf_if, "up")
        self._nics.append(nic)
        return leaf_if

    def uncable(self, nic: str) -> None:
        if nic == PROVISIONING_NIC or nic not in self._nics:
            raise LabServerError(f"{self.name} {nic} is not a cabled tenant NIC.")
        self._commands("ip", "-n", self.netns, "link", "del", nic)
        self._nics.remove(nic)


class LabServers:
    """A lab of servers and their provisioning network. Use as a context manager, or call
    ``build()`` and ``teardown()`` (also registered with atexit): teardown powers every
    server off, kills what runs in the lab's namespaces and deletes them (their veths go with
    them); the disks stay under `root` (the lab's data, like the hardware's).

    `prefix` names everything made on the machine (``sf`` + up to 6 characters; random by
    default, so runs never collide); with ``reclaim=True``, what an earlier lab of the same
    prefix left behind (a killed ``make run``) is removed first.

    The provisioning network's server address (`server_address`, by default the first host of
    `provisioning`) is where dnsmasq and the boot's HTTP server answer. Without `host_link` it
    sits on the bridge ``prov0`` in the namespace ``<prefix>-prov`` (run dnsmasq there). With
    `host_link` (a name for a link in this machine's own namespace, e.g. ``prov0``) the bridge
    is cabled to that link and the address sits on it: dnsmasq and the portal run on the host
    as they would beside a real data center, and the servers reach the portal there."""

    def __init__(
        self,
        servers: Sequence[ServerSpec | str],
        *,
        root: Path,
        prefix: str | None = None,
        provisioning: str = PROVISIONING_NETWORK,
        server_address: str | None = None,
        host_link: str | None = None,
        reclaim: bool = False,
    ):
        specs = [s if isinstance(s, ServerSpec) else ServerSpec(s) for s in servers]
        if len({s.name for s in specs}) != len(specs):
            raise safe.UnsafeValue("server names must be unique.")
        self.prefix = prefix if prefix is not None else f"sf{secrets.token_hex(3)}"
        if not re.fullmatch(r"sf[a-z0-9]{1,6}", self.prefix):
            raise safe.UnsafeValue(f"{self.prefix!r} is not a lab prefix (sf + 6 characters).")
        self.root = Path(root).resolve()
        network = safe.network(provisioning)
        if not isinstance(network, ipaddress.IPv4Network) or network.num_addresses < 8:
            raise safe.UnsafeValue(f"{provisioning} is not an IPv4 provisioning network.")
        address = ipaddress.IPv4Address(server_address or next(network.hosts()))
        if address not in network or address in (network.network_address, network[-1]):
            raise safe.UnsafeValue(f"{address} is not a host address of {network}.")
        self.provisioning_network = network
        self.server_address = ipaddress.IPv4Interface(f"{address}/{network.prefixlen}")
        self.provisioning_ns = f"{self.prefix}-prov"
        self.provisioning_bridge = PROVISIONING_BRIDGE
        self.host_link = _ifname(host_link) if host_link is not None else None
        self.reclaim = reclaim
        self.commands = _Commands()
        self.servers = {
            s.name: LabServer(
                s, netns=f"{self.prefix}-{s.name}", root=self.root, commands=self.commands
            )
            for s in specs
        }
        self._namespaces: list[str] = []
        self._inodes: set[str] = set()
        self._pidns: set[str] = set()
        self._host_link_made = False
        self._built = self._torn_down = False

    def __getitem__(self, name: str) -> LabServer:
        return self.servers[name]

    def __iter__(self) -> Iterator[LabServer]:
        return iter(self.servers.values())

    def __len__(self) -> int:
        return len(self.servers)

    def __enter__(self) -> LabServers:
        return self.build()

    def __exit__(self, *exc) -> None:
        self.teardown()

    def _netns(self, ns: str) -> None:
        self.commands.netns_add(ns)
        self._namespaces.append(ns)
        self._inodes.add(_ns_inode(f"/run/netns/{ns}"))

    def build(self) -> LabServers:
        if self._built:
            return self
        if self._torn_down:
            raise RuntimeError("this lab was torn down; make a new one.")
        if os.geteuid() != 0:
            raise LabServerError("lab servers are namespaces: run as root.")
        if self.reclaim:
            self.remove_prefix(self.prefix, host_link=self.host_link)
        self._built = True
        atexit.register(self.teardown)
        try:
            self._build()
        except BaseException:
            self.teardown()
            raise
        return self

    def _build(self) -> None:
        run, prov, bridge = self.commands, self.provisioning_ns, self.provisioning_bridge
        self.root.mkdir(parents=True, exist_ok=True)
        self._netns(prov)
        run("ip", "-n", prov, "link", "add", bridge, "type", "bridge")
        run("ip", "-n", prov, "link", "set", bridge, "up")
        if self.host_link is None:
            run("ip", "-n", prov, "addr", "add", str(self.server_address), "dev", bridge)
        else:
            run(
                "ip", "link", "add", self.host_link, "type", "veth",
                "peer", "name", "up0", "netns", prov,
            )  # fmt: skip
            self._host_link_made = True
            run("ip", "-n", prov, "link", "set", "up0", "master", bridge, "up")
            run("ip", "addr", "add", str(self.server_address), "dev", self.host_link)
            run("ip", "link", "set", self.host_link, "up")
        for i, server in enumerate(self, 1):
            self._netns(server.netns)
            run(
                "ip", "-n", prov, "link", "add", f"v{i}", "type", "veth",
                "peer", "name", PROVISIONING_NIC, "address", server.provisioning_mac,
                "netns", server.netns,
            )  # fmt: skip
            run("ip", "-n", prov, "link", "set", f"v{i}", "master", bridge, "up")

    def teardown(self) -> None:
        """Powers everything off and deletes every namespace made here. Idempotent."""
        if self._torn_down:
            return
        self._torn_down = True
        atexit.unregister(self.teardown)
        if not self._built:
            return
        failures: list[Exception] = []
        for server in self:
            if server._pidns:
                self._pidns.add(server._pidns)
            try:
                server.power_off()
            except Exception as exc:  # the namespaces go all the same
                failures.append(exc)
        _kill(_pids_with("net", self._inodes))  # e.g. a dnsmasq run in the provisioning ns
        for ns in reversed(self._namespaces):
            done = self.commands("ip", "netns", "delete", ns, check=False)
            if done.returncode != 0 and ns in _netns_list():
                failures.append(LinuxTestbedError(done.args, done.returncode, done.stderr))
        # The host's end went with the provisioning namespace (a veth dies with its peer).
        if self._host_link_made and self.host_link in _links():
            self.commands("ip", "link", "del", self.host_link, check=False)
        self._namespaces.clear()
        if failures:
            raise failures[0]

    @staticmethod
    def remove_prefix(prefix: str, *, host_link: str | None = None) -> None:
        """Kills the processes in, and deletes, every namespace and root link of `prefix`,
        and `host_link` (what a lab that was killed left behind)."""
        mine = [ns for ns in _netns_list() if ns.startswith(f"{prefix}-")]
        inodes = set()
        for ns in mine:
            with contextlib.suppress(FileNotFoundError):
                inodes.add(_ns_inode(f"/run/netns/{ns}"))
        _kill(_pids_with("net", inodes))
        run = _Commands()
        for ns in mine:
            run("ip", "netns", "delete", ns, check=False)
        for link in _links():
            if link.startswith(f"{prefix}-") or link == host_link:
                run("ip", "link", "del", link, check=False)

    def leftovers(self) -> list[str]:
        """What is left on the machine of this lab: namespaces and root links of its prefix,
        processes in its namespaces, mounts of its namespace files or under its root."""
        found = [f"netns {ns}" for ns in _netns_list() if ns.startswith(f"{self.prefix}-")]
        found += [
            f"link {link}"
            for link in _links()
            if link.startswith(f"{self.prefix}-")
            or (self._host_link_made and link == self.host_link)
        ]
        pidns = self._pidns | {s._pidns for s in self if s._pidns}
        pids = set(_pids_with("net", self._inodes)) | set(_pids_with("pid", pidns))
        found += [f"process {pid}" for pid in sorted(pids)]
        with open("/proc/self/mountinfo") as mounts:
            for line in mounts:
                fields = line.split()
                where = fields[4] if len(fields) > 4 else ""
                if where.startswith(f"/run/netns/{self.prefix}-") or where.startswith(
                    str(self.root) + "/"
                ):
                    found.append(f"mount {where}")
        return found


def _netns_list() -> list[str]:
    done = subprocess.run(
        [_TOOLS["ip"], "netns", "list"], capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S
    )
    return [line.split()[0] for line in done.stdout.splitlines() if line.strip()]


def _links(netns: str | None = None) -> list[str]:
    where = ["-n", netns] if netns else []
    done = subprocess.run(
        [_TOOLS["ip"], *where, "-o", "link", "show"],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
    )
    names = []
    for line in done.stdout.splitlines():
        parts = line.split(":", 2)
        if len(parts) > 1:
            names.append(parts[1].strip().split("@")[0])
    return names


def _link_exists(name: str) -> bool:
    return name in _links()
