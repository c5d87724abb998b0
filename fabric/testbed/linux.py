"""The `linux` test bed: builds a tenant network intent for real, in network namespaces on this
machine, so that isolation is proven by packets rather than by reading configuration.

The fabric it builds (every namespace is named ``<prefix>-...`` with a per-run prefix
``sf<6 hex>``, so that runs never collide and teardown finds everything it made):

* ``<prefix>-u``: the underlay, a bridge ``ul`` joining one veth per leaf (MTU 9000).
* ``<prefix>-l<i>``: leaf *i*, a VTEP with address ``underlay[i]`` on ``ul0``. For every VNI it
  carries there is a VXLAN device ``vx<vni>`` (unicast head-end replication: one all-zeros FDB
  entry per other leaf, MAC learning on) and a Linux bridge ``br<vni>`` joining the VXLAN device
  and the leaf side ``p<n>`` of every host veth on that segment.
* One leaf is the *border* leaf: it also carries a bridge for every segment with a gateway,
  holds the gateway address on it, forwards IPv4 and is the only router. It has no VRF device
  (this kernel has none): each tenant gets its own routing table, and ``ip rule iif br<vni>
  lookup <table>`` picks it for traffic from that tenant's segments. The ``local`` rule is moved
  behind those rules and a final ``not iif lo prohibit`` rule denies anything no table allows,
  so a tenant's table is the whole of what it can reach: its own segments and the storage
  prefix. Storage traffic (``iif st0``) has a table holding the segments of tenants that leak
  storage. No table holds a route from one tenant to another, not even to its gateway address.
* ``<prefix>-st``: the shared storage host, reached over the veth ``st0``/``eth0`` of the border.
* ``<prefix>-h<n>``: one namespace per tenant node, its ``eth<j>`` cabled to a leaf port.

Every value put on an ``ip`` command line is either one of the class's own generated names and
numbers, or comes from the intent and is validated again here through ``fabric.networks.safe``.
Commands run with argument lists, never a shell, as ``ip -n <ns> ...`` / ``bridge -n <ns> ...``
or ``ip netns exec <ns> ...``. Every command is recorded (``commands``, ``plan_text()``); a
failing one raises ``LinuxTestbedError`` with the command and its stderr. ``dry_run=True``
records the plan without touching the machine.
"""

from __future__ import annotations

import atexit
import ipaddress
import secrets
import shlex
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from fabric.networks import safe
from fabric.networks.intent import Network, Port, Segment

VXLAN_PORT = 4789
UNDERLAY_MTU = 9000
TENANT_MTU = 1500
BORDER_BASE_PREF = 100  # ip rule preferences on the border leaf
STORAGE_PREF = 900
TENANT_PREF = 1000
DENY_PREF = 31000
LOCAL_PREF = 32000
STORAGE_TABLE = 999
FIRST_TENANT_TABLE = 1000
COMMAND_TIMEOUT_S = 15

IPv4Interface = ipaddress.IPv4Interface
# The plan shows the short names; they run from the absolute paths found here.
_TOOLS = {tool: shutil.which(tool) or f"/usr/sbin/{tool}" for tool in ("ip", "bridge")}


def _query(*argv: str) -> str:
    """A read-only `ip` query (not part of the plan)."""
    done = subprocess.run(
        [_TOOLS["ip"], *argv], capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S
    )
    return done.stdout


class LinuxTestbedError(RuntimeError):
    """A command of the test bed failed: carries the command line and what it printed."""

    def __init__(self, command: Sequence[str], returncode: int | None, stderr: str):
        self.command = tuple(command)
        self.returncode = returncode
        self.stderr = stderr.strip()
        super().__init__(
            f"command failed (exit {returncode}): {shlex.join(self.command)}: {self.stderr}"
        )


@dataclass
class _Attachment:
    network: str
    port: Port
    leaf_ns: str
    leaf_if: str
    vni: int
    node_ns: str
    node_if: str


@dataclass
class _Tenant:
    network: Network
    table: int
    pref: int
    bridges: tuple[str, ...]  # border bridges that carry a gateway of this tenant


def _ipv4_interface(value, what: str) -> IPv4Interface:
    parsed = safe.gateway(value)
    if not isinstance(parsed, IPv4Interface):
        raise safe.UnsafeValue(f"{what} {value!r} must be IPv4 on the linux test bed.")
    return parsed


def _ipv4_network(value, what: str) -> ipaddress.IPv4Network:
    parsed = safe.network(value)
    if not isinstance(parsed, ipaddress.IPv4Network):
        raise safe.UnsafeValue(f"{what} {value!r} must be IPv4 on the linux test bed.")
    return parsed


class LinuxTestbed:
    """A small VXLAN fabric in network namespaces that realises tenant network intents.

    ``leaves`` are the switch names the intents' ports use (``Port.switch``); ``border`` is the
    leaf that routes (the first one unless named). ``underlay`` and ``storage`` are private
    prefixes that exist only inside the namespaces made here. Use as a context manager, or call
    ``build()`` and ``teardown()`` (also registered with atexit).
    """

    def __init__(
        self,
        leaves: Sequence[str] = ("leaf1", "leaf2"),
        *,
        border: str | None = None,
        underlay: str | ipaddress.IPv4Network = "10.254.0.0/24",
        storage: str | ipaddress.IPv4Network = "10.250.0.0/24",
        prefix: str | None = None,
        dry_run: bool = False,
    ):
        if not leaves:
            raise safe.UnsafeValue("the test bed needs at least one leaf.")
        self.leaves = tuple(safe.name(leaf) for leaf in leaves)
        if len(set(self.leaves)) != len(self.leaves):
            raise safe.UnsafeValue("leaf names must be unique.")
        self.border = safe.name(border) if border is not None else self.leaves[0]
        if self.border not in self.leaves:
            raise safe.UnsafeValue(f"border {self.border!r} is not one of the leaves.")
        self.underlay = _ipv4_network(underlay, "underlay")
        self.storage_network = _ipv4_network(storage, "storage prefix")
        if self.underlay.overlaps(self.storage_network):
            raise safe.UnsafeValue("underlay and storage prefixes overlap.")
        underlay_hosts = list(self.underlay.hosts())
        storage_hosts = list(self.storage_network.hosts())
        if len(underlay_hosts) < len(self.leaves) or len(storage_hosts) < 2:
            raise safe.UnsafeValue("underlay or storage prefix is too small.")
        self.prefix = prefix if prefix is not None else f"sf{secrets.token_hex(3)}"
        if not (self.prefix.startswith("sf") and len(self.prefix) <= 8):
            raise safe.UnsafeValue(f"{self.prefix!r} is not a test bed prefix (sf + 6 hex).")
        safe.name(self.prefix)
        self.dry_run = dry_run

        self.underlay_ns = f"{self.prefix}-u"
        self.storage_ns = f"{self.prefix}-st"
        self.leaf_ns = {leaf: f"{self.prefix}-l{i}" for i, leaf in enumerate(self.leaves, 1)}
        self.vtep = {leaf: underlay_hosts[i] for i, leaf in enumerate(self.leaves)}
        self.storage_gateway = IPv4Interface(f"{storage_hosts[0]}/{self.storage_network.prefixlen}")
        self.storage_address = IPv4Interface(f"{storage_hosts[1]}/{self.storage_network.prefixlen}")

        self.commands: list[tuple[str, ...]] = []
        self._namespaces: list[str] = []  # in creation order
        self._built = False
        self._torn_down = False
        self._vni_users: dict[tuple[str, int], set] = {}  # (leaf, vni) -> users
        self._attachments: dict[tuple[str, str, str], _Attachment] = {}
        self._tenants: dict[str, _Tenant] = {}
        self._node_ns: dict[str, str] = {}  # node name -> namespace
        self._counter = 0
        self._next_table = FIRST_TENANT_TABLE
        self._next_pref = TENANT_PREF

    # -- running commands -------------------------------------------------------------------

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess | None:
        command = tuple(str(a) for a in argv)
        self.commands.append(command)
        if self.dry_run:
            return None
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
        except OSError as exc:
            raise LinuxTestbedError(command, None, str(exc)) from exc
        if check and done.returncode != 0:
            raise LinuxTestbedError(command, done.returncode, done.stderr or done.stdout)
        return done

    def _ip(self, ns: str, *argv) -> None:
        self._run("ip", "-n", ns, *argv)

    def _sysctl(self, ns: str, *settings: str) -> None:
        self._run("ip", "netns", "exec", ns, "sysctl", "-q", "-w", *settings)

    def plan_text(self) -> str:
        """Every command run (or, with dry_run, that would run), one shell-quoted line each."""
        return "\n".join(shlex.join(c) for c in self.commands)

    def _name(self, letter: str) -> str:
        self._counter += 1
        return f"{letter}{self._counter}"

    # -- the fabric -------------------------------------------------------------------------

    def __enter__(self) -> LinuxTestbed:
        self.build()
        return self

    def __exit__(self, *exc) -> None:
        self.teardown()

    def build(self) -> LinuxTestbed:
        """Creates the underlay, the leaves and the storage host. Idempotent."""
        if self._built:
            return self
        if self._torn_down:
            raise RuntimeError("this test bed was torn down; make a new one.")
        self._built = True
        if not self.dry_run:
            atexit.register(self.teardown)
        self._namespace(self.underlay_ns)
        self._ip(self.underlay_ns, "link", "add", "ul", "mtu", UNDERLAY_MTU, "type", "bridge")
        self._ip(self.underlay_ns, "link", "set", "ul", "up")
        for i, leaf in enumerate(self.leaves, 1):
            ns = self.leaf_ns[leaf]
            self._namespace(ns)
            self._ip(
                ns,
                "link",
                "add",
                "ul0",
                "mtu",
                UNDERLAY_MTU,
                "type",
                "veth",
                "peer",
                "name",
                f"l{i}",
                "mtu",
                UNDERLAY_MTU,
                "netns",
                self.underlay_ns,
            )
            self._ip(self.underlay_ns, "link", "set", f"l{i}", "master", "ul", "up")
            self._ip(
                ns, "addr", "add", f"{self.vtep[leaf]}/{self.underlay.prefixlen}", "dev", "ul0"
            )
            self._ip(ns, "link", "set", "ul0", "up")
        self._build_border()
        return self

    def _namespace(self, ns: str) -> None:
        self._run("ip", "netns", "add", ns)
        self._namespaces.append(ns)
        self._ip(ns, "link", "set", "lo", "up")
        self._sysctl(ns, "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")

    def _build_border(self) -> None:
        ns = self.leaf_ns[self.border]
        self._sysctl(
            ns,
            "net.ipv4.ip_forward=1",
            "net.ipv4.conf.all.rp_filter=0",
            "net.ipv4.conf.default.rp_filter=0",
        )
        # Default deny: only what a table named by an iif rule allows is forwarded. The local
        # table moves behind the tenant rules so a tenant cannot even reach another tenant's
        # gateway address on this router; the underlay still reaches the VTEP address.
        self._ip(ns, "rule", "add", "pref", LOCAL_PREF, "lookup", "local")
        self._ip(ns, "rule", "del", "pref", "0", "lookup", "local")
        self._ip(ns, "rule", "add", "pref", BORDER_BASE_PREF, "iif", "ul0", "lookup", "local")
        self._ip(ns, "rule", "add", "pref", DENY_PREF, "not", "iif", "lo", "prohibit")
        # Storage host and its table.
        self._namespace(self.storage_ns)
        self._ip(
            ns,
            "link",
            "add",
            "st0",
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            self.storage_ns,
        )
        self._ip(ns, "addr", "add", str(self.storage_gateway), "dev", "st0")
        self._ip(ns, "link", "set", "st0", "up")
        self._ip(self.storage_ns, "addr", "add", str(self.storage_address), "dev", "eth0")
        self._ip(self.storage_ns, "link", "set", "eth0", "up")
        self._ip(self.storage_ns, "route", "add", "default", "via", str(self.storage_gateway.ip))
        gw = str(self.storage_gateway.ip)
        self._ip(ns, "route", "add", "local", gw, "dev", "st0", "table", STORAGE_TABLE)
        self._ip(
            ns,
            "route",
            "add",
            str(self.storage_network),
            "dev",
            "st0",
            "src",
            gw,
            "table",
            STORAGE_TABLE,
        )
        self._ip(ns, "rule", "add", "pref", STORAGE_PREF, "iif", "st0", "lookup", STORAGE_TABLE)

    def _vni_acquire(self, leaf: str, vni: int, user) -> str:
        """Makes sure `leaf` carries `vni` (VXLAN device + bridge); returns the bridge name."""
        vni = safe.number("vni", vni)
        bridge = f"br{vni}"
        users = self._vni_users.setdefault((leaf, vni), set())
        if not users:
            ns = self.leaf_ns[leaf]
            vx = f"vx{vni}"
            self._ip(
                ns,
                "link",
                "add",
                vx,
                "mtu",
                TENANT_MTU,
                "type",
                "vxlan",
                "id",
                vni,
                "local",
                str(self.vtep[leaf]),
                "dstport",
                VXLAN_PORT,
            )
            for other in self.leaves:  # head-end replication of BUM traffic to every other VTEP
                if other != leaf:
                    self._run(
                        "bridge",
                        "-n",
                        ns,
                        "fdb",
                        "append",
                        "00:00:00:00:00:00",
                        "dev",
                        vx,
                        "dst",
                        str(self.vtep[other]),
                    )
            index = self.leaves.index(leaf) + 1
            mac = f"02:5f:{vni >> 16 & 255:02x}:{vni >> 8 & 255:02x}:{vni & 255:02x}:{index:02x}"
            self._ip(ns, "link", "add", bridge, "address", mac, "type", "bridge")
            self._ip(ns, "link", "set", vx, "master", bridge, "up")
            self._ip(ns, "link", "set", bridge, "up")
        users.add(user)
        return bridge

    def _vni_release(self, leaf: str, vni: int, user) -> None:
        users = self._vni_users.get((leaf, vni))
        if users is None:
            return
        users.discard(user)
        if not users:
            del self._vni_users[(leaf, vni)]
            ns = self.leaf_ns[leaf]
            self._ip(ns, "link", "del", f"vx{vni}")
            self._ip(ns, "link", "del", f"br{vni}")

    # -- mapping the intent -----------------------------------------------------------------

    def apply(
        self, network: Network, addresses: Mapping[str, str | IPv4Interface] | None = None
    ) -> None:
        """Makes the fabric carry `network`: its gateways and policy routing on the border leaf,
        and exactly its ports. `addresses` maps each port's node to its address
        (``"10.201.1.11/24"``), which must lie in the segment's gateway prefix. Ports already
        attached stay; ports no longer in the intent are detached."""
        self.build()
        addresses = dict(addresses or {})
        tenant = self._tenants.get(network.name)
        if tenant is None:
            self._add_tenant(network)
        elif (tenant.network.segments, tenant.network.storage) != (
            network.segments,
            network.storage,
        ):
            raise safe.UnsafeValue(
                f"network {network.name} changed its segments or storage leak; remove() it first."
            )
        else:
            tenant.network = network
        wanted = {self._key(network, p) for p in network.ports}
        for key, attachment in list(self._attachments.items()):
            if attachment.network == network.name and key not in wanted:
                self.detach(network, attachment.port)
        for port in network.ports:
            if self._key(network, port) not in self._attachments:
                if port.node not in addresses:
                    raise safe.UnsafeValue(f"no address given for node {port.node!r}.")
                self.attach(network, port, addresses[port.node])

    def _add_tenant(self, network: Network) -> None:
        ns = self.leaf_ns[self.border]
        gateways: list[tuple[Segment, IPv4Interface]] = []
        for segment in network.segments:
            safe.number("vni", segment.l2vni)
            if any(
                segment.l2vni == s.l2vni for t in self._tenants.values() for s in t.network.segments
            ):
                raise safe.UnsafeValue(f"VNI {segment.l2vni} is already used by another network.")
            if segment.gateway is not None:
                gateway = _ipv4_interface(segment.gateway, f"gateway of {segment.name}")
                taken = [self.underlay, self.storage_network] + [
                    g.network for t in self._tenants.values() for g in self._gateways(t.network)
                ]
                if any(gateway.network.overlaps(n) for n in taken):
                    raise safe.UnsafeValue(
                        f"segment {segment.name} ({gateway.network}) overlaps a prefix already "
                        "on the test bed (no VRF here, so prefixes must be unique)."
                    )
                gateways.append((segment, gateway))
        storage = None
        if network.storage is not None:
            storage = _ipv4_network(network.storage.storage_prefix, "storage prefix")
            if not storage.overlaps(self.storage_network):
                raise safe.UnsafeValue(
                    f"storage prefix {storage} is not the test bed's {self.storage_network}."
                )
        table, pref = self._next_table, self._next_pref
        self._next_table += 1
        self._next_pref += 1
        bridges = []
        for segment, gateway in gateways:
            bridge = self._vni_acquire(self.border, segment.l2vni, ("gateway", network.name))
            bridges.append(bridge)
            gw = str(gateway.ip)
            self._ip(ns, "addr", "add", str(gateway), "dev", bridge)
            self._ip(ns, "route", "add", "local", gw, "dev", bridge, "table", table)
            self._ip(
                ns, "route", "add", str(gateway.network), "dev", bridge, "src", gw, "table", table
            )
            if storage is not None:
                self._ip(
                    ns, "route", "add", str(gateway.network), "dev", bridge, "table", STORAGE_TABLE
                )
        if storage is not None and bridges:
            self._ip(ns, "route", "add", str(storage), "dev", "st0", "table", table)
        for bridge in bridges:
            self._ip(ns, "rule", "add", "pref", pref, "iif", bridge, "lookup", table)
        self._tenants[network.name] = _Tenant(network, table, pref, tuple(bridges))

    @staticmethod
    def _gateways(network: Network) -> list[IPv4Interface]:
        return [s.gateway for s in network.segments if s.gateway is not None]

    @staticmethod
    def _key(network: Network, port: Port) -> tuple[str, str, str]:
        return (network.name, port.switch, port.interface)

    def attach(self, network: Network, port: Port, address: str | IPv4Interface) -> str:
        """Cables `port.node` to leaf `port.switch` on the port's segment; returns the node's
        namespace. The node's namespace is made on first use and kept across detach."""
        if port.switch not in self.leaf_ns:
            raise safe.UnsafeValue(f"switch {port.switch!r} is not a leaf of this test bed.")
        if not port.node:
            raise safe.UnsafeValue(f"port {port.interface} names no node.")
        key = self._key(network, port)
        if any(k[1:] == key[1:] for k in self._attachments):
            raise safe.UnsafeValue(f"port {port.switch} {port.interface} is already attached.")
        segment = network.segment(port.segment)
        address = _ipv4_interface(address, f"address of {port.node}")
        gateway = segment.gateway
        if gateway is not None and address.network != gateway.network:
            raise safe.UnsafeValue(
                f"address {address} of {port.node} is not in segment {segment.name} ({gateway})."
            )
        node = safe.name(port.node)
        self.build()
        if network.name not in self._tenants:
            self._add_tenant(network)
        node_ns = self._node_ns.get(node)
        if node_ns is None:
            node_ns = f"{self.prefix}-h{len(self._node_ns) + 1}"
            self._namespace(node_ns)
            self._node_ns[node] = node_ns
        live = {a.node_if for a in self._attachments.values() if a.port.node == node}
        node_if = next(f"eth{j}" for j in range(len(live) + 1) if f"eth{j}" not in live)
        leaf_ns = self.leaf_ns[port.switch]
        leaf_if = self._name("p")
        bridge = self._vni_acquire(port.switch, segment.l2vni, key)
        # The node's MAC stays the same across detach/attach, as a server's NIC would, so peers'
        # ARP caches stay right when it is cabled again.
        n, j = int(node_ns.rsplit("-h", 1)[1]), int(node_if[3:])
        mac = f"02:5e:{n >> 8 & 255:02x}:{n & 255:02x}:00:{j:02x}"
        self._ip(
            leaf_ns,
            "link",
            "add",
            leaf_if,
            "mtu",
            TENANT_MTU,
            "type",
            "veth",
            "peer",
            "name",
            node_if,
            "address",
            mac,
            "mtu",
            TENANT_MTU,
            "netns",
            node_ns,
        )
        self._ip(leaf_ns, "link", "set", leaf_if, "master", bridge, "up")
        self._ip(node_ns, "addr", "add", str(address), "dev", node_if)
        self._ip(node_ns, "link", "set", node_if, "up")
        if gateway is not None and not live:  # the node's first live cable carries its default
            self._ip(node_ns, "route", "add", "default", "via", str(gateway.ip))
        self._attachments[key] = _Attachment(
            network.name, port, leaf_ns, leaf_if, segment.l2vni, node_ns, node_if
        )
        return node_ns

    def detach(self, network: Network, port: Port) -> None:
        """Uncables the port: the leaf-side veth goes (and with it the node's interface). The
        leaf drops the VNI when no port needs it any more."""
        key = self._key(network, port)
        attachment = self._attachments.pop(key, None)
        if attachment is None:
            return
        self._ip(attachment.leaf_ns, "link", "del", attachment.leaf_if)
        self._vni_release(port.switch, attachment.vni, key)

    def remove(self, network: Network) -> None:
        """Takes the whole network off the fabric: ports, nodes, rules, tables, gateways."""
        tenant = self._tenants.get(network.name)
        for attachment in list(self._attachments.values()):
            if attachment.network == network.name:
                self.detach(network, attachment.port)
        if tenant is None:
            return
        ns = self.leaf_ns[self.border]
        for bridge in tenant.bridges:
            self._ip(ns, "rule", "del", "pref", tenant.pref, "iif", bridge, "lookup", tenant.table)
        self._ip(ns, "route", "flush", "table", tenant.table)
        if tenant.network.storage is not None:
            for gateway in self._gateways(tenant.network):
                self._ip(ns, "route", "del", str(gateway.network), "table", STORAGE_TABLE)
        for segment in tenant.network.segments:
            if segment.gateway is not None:
                self._vni_release(self.border, segment.l2vni, ("gateway", network.name))
        del self._tenants[network.name]
        for node in {p.node for p in tenant.network.ports if p.node}:
            if not any(a.port.node == node for a in self._attachments.values()):
                node_ns = self._node_ns.pop(node, None)
                if node_ns is not None:
                    self._run("ip", "netns", "delete", node_ns)
                    self._namespaces.remove(node_ns)

    # -- tearing down and looking -----------------------------------------------------------

    def teardown(self) -> None:
        """Deletes every namespace made here (their links go with them). Idempotent."""
        if self._torn_down:
            return
        self._torn_down = True
        atexit.unregister(self.teardown)
        if self.dry_run:
            return
        failures = []
        present = set(self._present_namespaces())
        for ns in reversed(self._namespaces):
            if ns in present:
                done = self._run("ip", "netns", "delete", ns, check=False)
                if done is not None and done.returncode != 0:
                    failures.append(LinuxTestbedError(done.args, done.returncode, done.stderr))
        self._namespaces.clear()
        self._attachments.clear()
        self._tenants.clear()
        self._vni_users.clear()
        self._node_ns.clear()
        if failures:
            raise failures[0]

    def _present_namespaces(self) -> list[str]:
        return [line.split()[0] for line in _query("netns", "list").splitlines() if line.strip()]

    def leftovers(self) -> list[str]:
        """Namespaces and root-namespace links whose name starts with this run's prefix."""
        found = [ns for ns in self._present_namespaces() if ns.startswith(self.prefix)]
        for line in _query("-o", "link", "show").splitlines():
            parts = line.split(":", 2)
            if len(parts) > 1 and parts[1].strip().split("@")[0].startswith(self.prefix):
                found.append(parts[1].strip())
        return found

    def namespace_of(self, node: str) -> str:
        return self._node_ns[node]

    @property
    def namespaces(self) -> tuple[str, ...]:
        return tuple(self._namespaces)

    def ping(self, node: str, target, *, wait_s: int = 1) -> bool:
        """One bounded ping from the node's namespace (``storage`` for the storage host is
        `ping_from_storage`); True when it is answered."""
        return self._ping(self._node_ns[safe.name(node)], target, wait_s)

    def ping_from_storage(self, target, *, wait_s: int = 1) -> bool:
        return self._ping(self.storage_ns, target, wait_s)

    def _ping(self, ns: str, target, wait_s: int) -> bool:
        if self.dry_run:
            raise RuntimeError("a dry-run test bed sends no packets.")
        address = ipaddress.IPv4Address(str(target).split("/")[0])
        wait = str(int(wait_s))
        command = [
            _TOOLS["ip"],
            "netns",
            "exec",
            ns,
            "ping",
            "-n",
            "-q",
            "-c",
            "1",
            "-W",
            wait,
            "-w",
            str(int(wait_s) + 1),
            str(address),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=wait_s + 10)
        return done.returncode == 0

    def attachments(self) -> Iterable[tuple[str, Port, str, str]]:
        """(network, port, leaf namespace, leaf interface) for every cabled port."""
        return [(a.network, a.port, a.leaf_ns, a.leaf_if) for a in self._attachments.values()]
