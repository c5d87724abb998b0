"""The lab's way in from outside: a "customer laptop", the router between it and the data
center, the tenant segments' layer 2, and each tenant network's bastion (fabric.bastion).

* ``<prefix>-laptop``: the customer's laptop, ``eth0`` 198.51.100.2/24 (TEST-NET-2), its
  default route via the router. It knows nothing of the data center but what is routed to it.
* ``<prefix>-inet``: the router (the internet and the site's border in one), 198.51.100.1 toward
  the laptop, 192.0.2.1 toward this machine (the portal, whose ready check goes the customer's
  way: ``<prefix>-i``, 192.0.2.2, with a route to each bastion's access prefix) and, per
  bastion, the access prefix's gateway (its first host) on a veth to it. It forwards between
  those links only: tenant segments are not routed from outside at all.
* ``<prefix>-fab``: the tenant segments' layer 2, what the leaves' VLANs carry: one bridge
  ``s<segment id>`` per segment. ``cable()`` cables a server's tenant NIC to a port here, on
  no segment; ``plug()`` puts that port on a segment's bridge or takes it off (an access port
  moved between VLANs); the bastion's tenant leg is on its segment's bridge. (The lab's
  FakeNOS switches take the configuration; they forward nothing.)
* ``<prefix>-b<network id>``: a tenant network's bastion, ``up0`` holding its public address
  (the access prefix's second host), ``t0`` its address on the first segment; it does not
  forward. Debian's sshd runs there on the files `fabric.bastion.bastion_files_write` wrote,
  as the bastion user, which exists only in that sshd's private view of /etc/passwd.

The namespaces belong to the `LabServers` lab they are built on: its teardown kills what runs
in them and deletes them. Commands are argument lists; names come from ids."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from pathlib import Path

from fabric.bastion import CONFIG, Bastion
from fabric.testbed.servers.lab import LabServer, LabServerError, LabServers

LAPTOP = "198.51.100.2/24"
ROUTER = "198.51.100.1/24"
HOST = "192.0.2.2/24"
ROUTER_TO_HOST = "192.0.2.1/24"
BASTION_UID = 64_500
SSHD = "/usr/sbin/sshd"
IP = shutil.which("ip") or "/usr/sbin/ip"
START_TIMEOUT_S = 15


class LabAccess:
    def __init__(self, lab: LabServers):
        self.lab = lab
        self.laptop_ns = f"{lab.prefix}-laptop"
        self.router_ns = f"{lab.prefix}-inet"
        self.fabric_ns = f"{lab.prefix}-fab"
        self.host_link = f"{lab.prefix}-i"
        self._bridges: set[str] = set()
        self._ports: dict[tuple[str, str], str] = {}  # (server, NIC) -> its fabric port
        self._sshd: dict[int, subprocess.Popen] = {}  # network id -> its bastion's sshd
        self._routes: dict[int, str] = {}  # network id -> this machine's route to its bastion
        self.logs: dict[int, Path] = {}  # network id -> its bastion's sshd log

    def build(self) -> LabAccess:
        run = self.lab.commands
        for ns in (self.router_ns, self.laptop_ns, self.fabric_ns):
            self.lab._netns(ns)
        run(
            "ip", "-n", self.router_ns, "link", "add", "lap0", "type", "veth",
            "peer", "name", "eth0", "netns", self.laptop_ns,
        )  # fmt: skip
        run("ip", "-n", self.router_ns, "addr", "add", ROUTER, "dev", "lap0")
        run("ip", "-n", self.router_ns, "link", "set", "lap0", "up")
        run("ip", "-n", self.laptop_ns, "addr", "add", LAPTOP, "dev", "eth0")
        run("ip", "-n", self.laptop_ns, "link", "set", "eth0", "up")
        run("ip", "-n", self.laptop_ns, "route", "add", "default", "via", ROUTER.split("/")[0])
        run("ip", "link", "add", self.host_link, "type", "veth",
            "peer", "name", "host0", "netns", self.router_ns)  # fmt: skip
        run("ip", "-n", self.router_ns, "addr", "add", ROUTER_TO_HOST, "dev", "host0")
        run("ip", "-n", self.router_ns, "link", "set", "host0", "up")
        run("ip", "addr", "add", HOST, "dev", self.host_link)
        run("ip", "link", "set", self.host_link, "up")
        run("ip", "netns", "exec", self.router_ns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        return self

    def _bridge(self, segment_id: int) -> str:
        bridge = f"s{int(segment_id)}"
        if bridge not in self._bridges:
            run = self.lab.commands
            run("ip", "-n", self.fabric_ns, "link", "add", bridge, "type", "bridge")
            run("ip", "-n", self.fabric_ns, "link", "set", bridge, "up")
            self._bridges.add(bridge)
        return bridge

    def cable(self, server: LabServer, *, nic: str = "eth0") -> None:
        """Cable `server`'s tenant NIC to a port of the fabric, on no segment yet."""
        if (server.name, nic) not in self._ports:
            self._ports[server.name, nic] = f"p{len(self._ports) + 1}"
            server.cable(leaf_ns=self.fabric_ns, leaf_if=self._ports[server.name, nic], nic=nic)

    def plug(self, server: LabServer, *, segment_id: int | None, nic: str = "eth0") -> None:
        """Put `server`'s tenant NIC on the segment's layer 2, or on none (what attaching and
        detaching its switch port do); cabled first if it is not."""
        self.cable(server, nic=nic)
        port = self._ports[server.name, nic]
        if segment_id is None:
            self.lab.commands("ip", "-n", self.fabric_ns, "link", "set", port, "nomaster")
        else:
            bridge = self._bridge(segment_id)
            self.lab.commands("ip", "-n", self.fabric_ns, "link", "set", port, "master", bridge)

    def bastion(self, bastion: Bastion, *, directory: Path) -> None:
        """Build the bastion's namespace and links and start its sshd on `directory`'s files;
        returns once sshd listens. On failure nothing of it is left (a later call may retry)."""
        try:
            self._bastion(bastion, directory=directory)
        except BaseException:
            self.bastion_stop(bastion.network_id)
            raise

    def _bastion(self, bastion: Bastion, *, directory: Path) -> None:
        run, ns, n = (
            self.lab.commands,
            f"{self.lab.prefix}-b{bastion.network_id}",
            bastion.network_id,
        )
        self.lab._netns(ns)
        run("ip", "-n", self.router_ns, "link", "add", f"b{n}", "type", "veth",
            "peer", "name", "up0", "netns", ns)  # fmt: skip
        gateway = f"{bastion.gateway}/{bastion.public.network.prefixlen}"
        run("ip", "-n", self.router_ns, "addr", "add", gateway, "dev", f"b{n}")
        run("ip", "-n", self.router_ns, "link", "set", f"b{n}", "up")
        run("ip", "-n", ns, "addr", "add", str(bastion.public), "dev", "up0")
        run("ip", "-n", ns, "link", "set", "up0", "up")
        run("ip", "-n", ns, "route", "add", "default", "via", str(bastion.gateway))
        self._routes[n] = str(bastion.public.network)
        # `replace`: another lab on this machine may route the same prefix; the last one wins.
        run("ip", "route", "replace", self._routes[n], "via",
            ROUTER_TO_HOST.split("/")[0], "dev", self.host_link)  # fmt: skip
        run("ip", "-n", self.fabric_ns, "link", "add", f"t{n}", "type", "veth",
            "peer", "name", "t0", "netns", ns)  # fmt: skip
        run("ip", "-n", self.fabric_ns, "link", "set", f"t{n}", "master",
            self._bridge(bastion.segment_id), "up")  # fmt: skip
        run("ip", "-n", ns, "addr", "add", str(bastion.tenant), "dev", "t0")
        run("ip", "-n", ns, "link", "set", "t0", "up")
        passwd = directory / "passwd"
        with open("/etc/passwd") as host:
            users = [line for line in host.read().splitlines() if line]
        users.append(f"{bastion.user}:x:{BASTION_UID}:65534::/nonexistent:/usr/sbin/nologin")
        passwd.write_text("\n".join(users) + "\n")
        log = self.logs[n] = directory / "sshd.log"
        argv = [
            IP, "netns", "exec", ns, "unshare", "--mount", "--propagation", "private",
            "/bin/sh", "-c", 'mount --bind "$0" /etc/passwd && exec "$1" -D -e -f "$2"',
            str(passwd), SSHD, str(directory / CONFIG),
        ]  # fmt: skip
        with log.open("ab") as output:
            self._sshd[n] = subprocess.Popen(argv, stdout=output, stderr=output)
        deadline = time.monotonic() + START_TIMEOUT_S
        while "Server listening on" not in log.read_text(errors="replace"):
            if self._sshd[n].poll() is not None or time.monotonic() > deadline:
                raise LabServerError(f"the bastion's sshd did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)

    def laptop(self, argv: list[str], *, timeout: float = 30, **kwargs):
        """Run `argv` on the customer's laptop."""
        return subprocess.run(
            [IP, "netns", "exec", self.laptop_ns, *argv],
            capture_output=True, text=True, timeout=timeout, check=False, **kwargs,
        )  # fmt: skip

    def bastion_stop(self, network_id: int) -> None:
        """Stop a bastion and remove its namespace and route (its network was deleted)."""
        process = self._sshd.pop(network_id, None)
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait(10)
        route = self._routes.pop(network_id, None)
        if route is not None:
            self.lab.commands("ip", "route", "del", route, "dev", self.host_link, check=False)
        n = int(network_id)
        # Its veths now (a deleted namespace takes its links with it, but later).
        self.lab.commands("ip", "-n", self.fabric_ns, "link", "del", f"t{n}", check=False)
        self.lab.commands("ip", "-n", self.router_ns, "link", "del", f"b{n}", check=False)
        self.lab.commands("ip", "netns", "delete", f"{self.lab.prefix}-b{n}", check=False)

    @property
    def bastions(self) -> list[int]:
        return sorted(self._sshd)

    def close(self) -> None:
        """Stop the bastions' sshd and unplug this machine; the lab's teardown does the rest."""
        for network_id in list(self._sshd):
            self.bastion_stop(network_id)
        # Its routes go with it; deleting the router's namespace would drop it too, later.
        self.lab.commands("ip", "link", "del", self.host_link, check=False)
