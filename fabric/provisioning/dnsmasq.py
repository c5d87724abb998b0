"""dnsmasq for the provisioning network: a main configuration (DHCP on the provisioning prefix
for reserved servers only, no DNS, the iPXE chain, TFTP) and a `dhcp-hostsfile` with one
`MAC,hostname,address` reservation per provisioning NIC, written atomically; SIGHUP makes a
running dnsmasq re-read the reservations (it reads its main configuration only at start).

Every value written passes a strict check here: MACs normalised to the inventory's lower-case
colon form and unicast, hostnames one RFC 1123 label, addresses parsed and inside the prefix,
interface names as Linux allows them, URLs without a character that dnsmasq or iPXE would read
as syntax (no ',', whitespace, '#', '$' or quotes). Nothing typed by a tenant reaches a file:
hostnames are node names, and a name that fails the check is refused, not rewritten."""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import signal
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from fabric.files import file_replace
from fabric.networks.safe import UnsafeValue

CONF = "dnsmasq.conf"
HOSTS = "hosts"
LEASES = "leases"
TFTP = "tftp"
# iPXE built as a PXE ROM payload (BIOS) and as an EFI application, as Debian's `ipxe` ships them.
IPXE_LOADERS = ("undionly.kpxe", "ipxe.efi")
DHCP_FILE_FIELD = 127  # bytes of the BOOTP `file` field, less its terminating NUL

_MAC_FORMS = (
    re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$"),
    re.compile(r"^([0-9a-f]{2}-){5}[0-9a-f]{2}$"),
    re.compile(r"^([0-9a-f]{4}\.){2}[0-9a-f]{4}$"),
    re.compile(r"^[0-9a-f]{12}$"),
)
_HOSTNAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_INTERFACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")  # IFNAMSIZ - 1
_NETNS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_PATH = re.compile(r"^[A-Za-z0-9_./+-]{1,200}$")
_URL = re.compile(r"^[A-Za-z0-9._~:/?=&%+@-]+$")
_URL_SCHEMES = ("http", "https", "tftp")


def mac(value: str) -> str:
    """A unicast MAC address as aa:bb:cc:dd:ee:ff, from that form, aa-bb-..., aabb.ccdd.eeff or
    aabbccddeeff (any case)."""
    text = value.lower() if isinstance(value, str) else ""
    if not any(form.fullmatch(text) for form in _MAC_FORMS):
        raise UnsafeValue(f"{value!r} is not a MAC address.")
    digits = re.sub(r"[^0-9a-f]", "", text)
    if int(digits[:2], 16) & 1:
        raise UnsafeValue(f"{value!r} is a multicast address, not a NIC's.")
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def hostname(value: str) -> str:
    """One DNS label: lower-case letters, digits and inner hyphens, 63 at most."""
    if not isinstance(value, str) or not _HOSTNAME.fullmatch(value):
        raise UnsafeValue(f"{value!r} is not a hostname (a-z, 0-9 and inner '-', 63 at most).")
    return value


def interface(value: str) -> str:
    if not isinstance(value, str) or not _INTERFACE.fullmatch(value):
        raise UnsafeValue(f"{value!r} is not a network interface name.")
    return value


def netns(value: str) -> str:
    if not isinstance(value, str) or not _NETNS.fullmatch(value):
        raise UnsafeValue(f"{value!r} is not a network namespace name.")
    return value


def path(value) -> Path:
    """An absolute directory path of plain characters (dnsmasq reads no quoting)."""
    text = str(value)
    if not _PATH.fullmatch(text) or not text.startswith("/"):
        raise UnsafeValue(f"{text!r} is not an allowed absolute path.")
    return Path(text)


def url(value: str) -> str:
    """An http, https or tftp URL with a host, made of characters that are plain text to both
    dnsmasq and iPXE."""
    if not isinstance(value, str) or not _URL.fullmatch(value) or len(value) > 255:
        raise UnsafeValue(f"{value!r} is not an allowed URL.")
    parts = urlsplit(value)
    if parts.scheme not in _URL_SCHEMES or not parts.hostname:
        raise UnsafeValue(f"{value!r} is not an http, https or tftp URL with a host.")
    return value


@dataclass(frozen=True)
class Host:
    """One reservation: the provisioning NIC's MAC, the server's name, its address."""

    mac: str
    hostname: str
    address: ipaddress.IPv4Address

    def __post_init__(self):
        object.__setattr__(self, "mac", mac(self.mac))
        hostname(self.hostname)
        try:
            address = ipaddress.IPv4Address(str(self.address))
        except ValueError as exc:
            raise UnsafeValue(f"{self.address!r} is not an IPv4 address.") from exc
        object.__setattr__(self, "address", address)

    @property
    def line(self) -> str:
        return f"{self.mac},{self.hostname},{self.address}"


@dataclass(frozen=True)
class Network:
    """Where dnsmasq serves: the interface it binds, the prefix, its own address there (the
    interface must carry it), the URL iPXE is sent to, and the lease time."""

    interface: str
    prefix: ipaddress.IPv4Network
    server: ipaddress.IPv4Address
    boot_url: str
    lease_seconds: int = 3600

    def __post_init__(self):
        interface(self.interface)
        try:
            prefix = ipaddress.IPv4Network(str(self.prefix), strict=True)
            server = ipaddress.IPv4Address(str(self.server))
        except ValueError as exc:
            raise UnsafeValue(f"{self.prefix!r} / {self.server!r}: {exc}") from exc
        if prefix.prefixlen > 30 or server not in prefix or server in _edges(prefix):
            raise UnsafeValue(f"{server} is not a host address of {prefix}.")
        url(self.boot_url)
        if len(self.boot_url.encode()) > DHCP_FILE_FIELD:
            raise UnsafeValue(f"{self.boot_url!r} does not fit DHCP's boot file field.")
        if isinstance(self.lease_seconds, bool) or not 120 <= int(self.lease_seconds) <= 604800:
            raise UnsafeValue(f"a lease of {self.lease_seconds!r} s is outside 120 s to a week.")
        object.__setattr__(self, "prefix", prefix)
        object.__setattr__(self, "server", server)
        object.__setattr__(self, "lease_seconds", int(self.lease_seconds))


def _edges(prefix: ipaddress.IPv4Network) -> tuple:
    return (prefix.network_address, prefix.broadcast_address)


def render_conf(network: Network, *, directory: Path) -> str:
    """dnsmasq's main configuration. DHCP answers only reserved MACs (`static` range, unknown
    clients ignored), hands out no router and no DNS server (the provisioning network leads
    nowhere), sends plain PXE firmware iPXE over TFTP and iPXE itself to `boot_url`."""
    directory = path(directory)
    return "\n".join(
        [
            "# The provisioning network, rendered by the portal (fabric.provisioning.dnsmasq)",
            "# from the inventory. Do not edit: `manage.py provisioning_dnsmasq` rewrites it.",
            "port=0",
            f"interface={network.interface}",
            "bind-interfaces",
            "pid-file=",
            "log-dhcp",
            f"dhcp-range=set:provisioning,{network.prefix.network_address},static,"
            f"{network.prefix.netmask},{network.lease_seconds}",
            "dhcp-authoritative",
            "dhcp-ignore=tag:!known",
            f"dhcp-hostsfile={directory / HOSTS}",
            f"dhcp-leasefile={directory / LEASES}",
            "dhcp-option=option:router",
            "dhcp-option=option:dns-server",
            "dhcp-match=set:ipxe,175",
            "dhcp-userclass=set:ipxe,iPXE",
            "dhcp-match=set:efi64,option:client-arch,7",
            "dhcp-match=set:efi64,option:client-arch,9",
            f"dhcp-boot=tag:ipxe,{network.boot_url}",
            f"dhcp-boot=tag:!ipxe,tag:efi64,{IPXE_LOADERS[1]}",
            f"dhcp-boot=tag:!ipxe,tag:!efi64,{IPXE_LOADERS[0]}",
            "enable-tftp",
            f"tftp-root={directory / TFTP}",
            "tftp-no-fail",
            "",
        ]
    )


def render_hosts(network: Network, hosts: Iterable[Host]) -> str:
    """The `dhcp-hostsfile`: one reservation a line, ordered by address. A MAC or an address
    twice, or an address outside the prefix (or its network, broadcast or server address), is
    refused: dnsmasq would otherwise pick one silently."""
    hosts = list(hosts)
    macs: set[str] = set()
    addresses: set[ipaddress.IPv4Address] = set()
    taken = {*_edges(network.prefix), network.server}
    for host in hosts:
        if host.address not in network.prefix or host.address in taken:
            raise UnsafeValue(f"{host.address} is not a free host address of {network.prefix}.")
        if host.mac in macs or host.address in addresses:
            raise UnsafeValue(f"{host.line}: its MAC or address is reserved twice.")
        macs.add(host.mac)
        addresses.add(host.address)
    ordered = sorted(hosts, key=lambda host: host.address)
    header = "# MAC,hostname,address of each provisioning NIC (fabric.provisioning.dnsmasq)\n"
    return header + "".join(f"{host.line}\n" for host in ordered)


@dataclass(frozen=True)
class Applied:
    conf_changed: bool
    hosts_changed: bool
    signalled: bool


def dnsmasq_apply(*, directory: Path, conf: str, hosts: str, pid: int | None = None) -> Applied:
    """Write the files that changed, each atomically (a temporary file beside it, renamed over
    it), and when the reservations changed and dnsmasq runs as `pid`, send it SIGHUP so the
    next lease follows them. A changed main configuration takes a restart, which the caller
    owns (`conf_changed`)."""
    directory = Path(directory)
    directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    (directory / TFTP).mkdir(mode=0o755, exist_ok=True)
    conf_changed = file_replace(directory / CONF, conf)
    hosts_changed = file_replace(directory / HOSTS, hosts)  # re-read as nobody: 0644
    signalled = False
    if hosts_changed and pid:
        os.kill(pid, signal.SIGHUP)
        signalled = True
    return Applied(conf_changed=conf_changed, hosts_changed=hosts_changed, signalled=signalled)


def ipxe_loaders_copy(*, directory: Path, source: Path) -> list[str]:
    """Put iPXE's boot loaders from `source` (Debian's `ipxe` package: /usr/lib/ipxe) into the
    TFTP root, for servers whose firmware speaks plain PXE; the names copied. Servers that
    boot iPXE already (and the lab) do not need them."""
    copied = []
    target = Path(directory) / TFTP
    target.mkdir(mode=0o755, parents=True, exist_ok=True)
    for name in IPXE_LOADERS:
        origin = Path(source) / name
        if origin.is_file():
            data = origin.read_bytes()
            existing = target / name
            if not existing.is_file() or existing.read_bytes() != data:
                shutil.copyfile(origin, existing)
                os.chmod(existing, 0o644)
            copied.append(name)
    return copied


def dnsmasq_argv(*, directory: Path, namespace: str | None = None) -> list[str]:
    """The command line that runs dnsmasq in the foreground on the rendered configuration,
    logging to stderr, inside network namespace `namespace` when given (`ip netns exec`
    execs dnsmasq, so the process started is dnsmasq itself and takes its signals)."""
    argv = [
        shutil.which("dnsmasq") or "/usr/sbin/dnsmasq",
        "--keep-in-foreground",
        f"--conf-file={Path(directory) / CONF}",
        "--log-facility=-",
    ]
    if namespace is not None:
        argv = [shutil.which("ip") or "/usr/sbin/ip", "netns", "exec", netns(namespace), *argv]
    return argv
