"""The tenant's way in from outside: one SSH jump host (bastion) per tenant network.

A tenant network's servers hold private addresses on its segments only. Its bastion has two
legs: its public address in the network's `access_prefix` (the second host; the first is the
router's, toward the outside) and an address on the network's first segment (its last host,
which `network_attach` never hands to a server). It runs Debian's sshd with the configuration
rendered here: one unprivileged user (settings.ACCESS_BASTION_USER) with no shell, no terminal,
no agent, X11 or remote forwarding, whose only power is to open TCP connections to port 22 of
the servers each key is granted (`permitopen` per key in `authorized_keys`, which sshd reads at
each login, so a grant changes without a reload). The customer's ssh line is
`ssh -J <user>@<public address> ubuntu@<server address>`; docs/networks.md says why a jump host.

Keys and grants come from the orders (catalog.access); this module only renders and writes
files, every value parsed again (addresses, keys) before it is written.

The portal's probe: the bare-metal ready check goes the customer's way, through the bastion,
with the portal's own key (settings.ACCESS_PROBE_KEY_FILE, made on first use, 0600, by
whichever of the portal's processes needs it first: they run as one user, whom the worker's
ready check needs to be able to read it), which
every bastion grants its network's servers. It only runs the server's key exchange and
compares the host key with the one the server phoned home; the bastion's own host key is not
checked (a bastion in the middle cannot forge the server's)."""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from django.conf import settings

from fabric.files import file_replace
from fabric.models import NetworkSegment, TenantNetwork
from fabric.networks import safe
from portal.services.ssh_keys import ssh_key_parse

SSH_PORT = 22
CONFIG = "sshd_config"
AUTHORIZED_KEYS = "authorized_keys"
HOST_KEY = "ssh_host_ed25519_key"
PID_FILE = "sshd.pid"
PRIVSEP_DIR = "/run/sshd"
SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"


@dataclass(frozen=True)
class Bastion:
    network_id: int
    segment_id: int
    public: ipaddress.IPv4Interface  # in the access prefix: what the customer connects to
    gateway: ipaddress.IPv4Address  # the router's address in the access prefix
    tenant: ipaddress.IPv4Interface  # on the network's first segment
    user: str

    @property
    def jump(self) -> str:
        """The `-J` argument of the customer's ssh line."""
        return f"{self.user}@{self.public.ip}"


def bastion_tenant_address(segment: NetworkSegment) -> ipaddress.IPv4Address:
    """The bastion's address on `segment`: its last host (servers are given the lowest)."""
    *_, last = ipaddress.ip_network(segment.prefix).hosts()
    return last


def bastion_of(network: TenantNetwork) -> Bastion | None:
    """The bastion of an active network with an access prefix and a segment; None otherwise."""
    if network.state != TenantNetwork.State.ACTIVE or network.access_prefix is None:
        return None
    segment = network.segments.order_by("pk").first()
    if segment is None:
        return None
    access = safe.network(network.access_prefix)
    segment_prefix = safe.network(segment.prefix)
    gateway, public, *_ = access.hosts()
    return Bastion(
        network_id=network.pk,
        segment_id=segment.pk,
        public=ipaddress.IPv4Interface(f"{public}/{access.prefixlen}"),
        gateway=gateway,
        tenant=ipaddress.IPv4Interface(
            f"{bastion_tenant_address(segment)}/{segment_prefix.prefixlen}"
        ),
        user=safe.name(settings.ACCESS_BASTION_USER),
    )


def render_sshd_config(bastion: Bastion, *, directory: Path) -> str:
    return "\n".join(
        [
            f"# The bastion of tenant network {bastion.network_id} (fabric.bastion); rendered.",
            f"Port {SSH_PORT}",
            f"ListenAddress {bastion.public.ip}",
            f"HostKey {directory / HOST_KEY}",
            f"PidFile {directory / PID_FILE}",
            f"AuthorizedKeysFile {directory / AUTHORIZED_KEYS}",
            f"AllowUsers {bastion.user}",
            "PermitRootLogin no",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "PermitTTY no",
            "PermitUserRC no",
            "PermitTunnel no",
            "X11Forwarding no",
            "AllowAgentForwarding no",
            "AllowStreamLocalForwarding no",
            "AllowTcpForwarding local",
            "GatewayPorts no",
            "ForceCommand /usr/sbin/nologin",
            "MaxAuthTries 3",
            "MaxSessions 10",
            "LoginGraceTime 20",
            "ClientAliveInterval 30",
            "LogLevel VERBOSE",
            "",
        ]
    )


def render_authorized_keys(grants: Mapping[str, Iterable[str]]) -> str:
    """One line per key (an OpenSSH public key -> what it may reach: a server's address, which
    means its port 22, or `address:port`): `restrict` takes every power away,
    `port-forwarding` gives back local forwarding, and `permitopen` limits it to those. A key
    without a valid target is left out."""
    lines = []
    for key, targets in sorted(grants.items()):
        _, normalised, _, _ = ssh_key_parse(key)
        opens = sorted({_target(t) for t in targets})
        if not opens:
            continue
        permits = ",".join(f'permitopen="{address}:{port}"' for address, port in opens)
        lines.append(f"restrict,port-forwarding,{permits} {normalised}")
    return "".join(f"{line}\n" for line in lines)


def _target(target) -> tuple[ipaddress.IPv4Address, int]:
    """`10.0.0.5`, `10.0.0.5/24` (port 22) or `10.0.0.5:8265`, validated."""
    address, _, port = str(target).split("/")[0].partition(":")
    number = int(port) if port else SSH_PORT
    if not 0 < number < 65536:
        raise ValueError(f"not a port: {port!r}")
    return ipaddress.IPv4Address(address), number


def bastion_files_write(
    *, bastion: Bastion, directory: Path, grants: Mapping[str, Iterable[str]]
) -> bool:
    """Write the bastion's files in `directory` (root's, not writable by others: sshd's
    StrictModes checks every folder up to /): its sshd_config, authorized_keys and, the first
    time, its host key. True when sshd_config changed (sshd must be restarted to read it)."""
    directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    os.makedirs(PRIVSEP_DIR, mode=0o755, exist_ok=True)  # sshd will not start without it
    if not (directory / HOST_KEY).exists():
        subprocess.run(
            [SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", f"bastion-{bastion.network_id}",
             "-f", str(directory / HOST_KEY)],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip
    file_replace(directory / AUTHORIZED_KEYS, render_authorized_keys(grants))
    return file_replace(directory / CONFIG, render_sshd_config(bastion, directory=directory))


def bastion_host_key(directory: Path) -> str:
    """The bastion's public host key (`type base64`), for the customer's known_hosts."""
    return " ".join((directory / f"{HOST_KEY}.pub").read_text().split()[:2])


def probe_key() -> paramiko.Ed25519Key:
    """The portal's probe key, made on first use (an ed25519 key in OpenSSH format, 0600)."""
    path = Path(settings.ACCESS_PROBE_KEY_FILE)
    if not path.exists():  # written whole, then linked into place: the first writer wins
        path.parent.mkdir(parents=True, exist_ok=True)
        private = ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(handle, "wb") as out:  # mkstemp's mode: 0600
                out.write(private)
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        finally:
            os.unlink(temporary)
    return paramiko.Ed25519Key.from_private_key_file(str(path))


def probe_public_key() -> str:
    key = probe_key()
    return f"{key.get_name()} {key.get_base64()}"


class _AnyBastion(paramiko.MissingHostKeyPolicy):
    def missing_host_key(self, client, hostname, key):
        return  # the server's key, checked at the end of the channel, is what counts


def probe_connect(bastion: Bastion, *, timeout: float) -> paramiko.SSHClient:
    """An SSH connection to `bastion` as its user with the probe key (close it when done);
    OSError or paramiko.SSHException when the bastion does not answer or refuses."""
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(_AnyBastion())
    try:
        client.connect(
            str(bastion.public.ip), port=SSH_PORT, username=bastion.user, pkey=probe_key(),
            timeout=timeout, banner_timeout=timeout, auth_timeout=timeout,
            allow_agent=False, look_for_keys=False,
        )  # fmt: skip
    except BaseException:
        client.close()
        raise
    return client


def probe_open(
    client: paramiko.SSHClient, address: str, *, timeout: float, port: int = SSH_PORT
) -> paramiko.Channel:
    """A channel through the bastion `client` is connected to, to `address`'s `port` (several
    may be open at once, from several threads); paramiko.SSHException when it is refused."""
    return client.get_transport().open_channel(
        "direct-tcpip", (address, port), ("127.0.0.1", 0), timeout=timeout
    )


def server_connect(
    client: paramiko.SSHClient, address: str, *, user: str, host_keys: dict, timeout: float
) -> paramiko.SSHClient:
    """Log in to the server at `address` as `user` with the probe key, through the bastion
    `client` is connected to, trusting only `host_keys` (type -> "type base64", what the
    server phoned home). Close it when done; paramiko.SSHException or OSError on failure."""
    server = paramiko.SSHClient()
    for key_type, public_key in host_keys.items():
        blob = base64.b64decode(public_key.split()[1])
        server.get_host_keys().add(
            address, key_type, paramiko.PKey.from_type_string(key_type, blob)
        )
    server.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        sock = probe_open(client, address, timeout=timeout)
        server.connect(
            address, username=user, pkey=probe_key(), sock=sock,
            timeout=timeout, banner_timeout=timeout, auth_timeout=timeout,
            allow_agent=False, look_for_keys=False,
        )  # fmt: skip
    except BaseException:
        server.close()
        raise
    return server


def server_run(server: paramiko.SSHClient, command: str, *, timeout: float) -> tuple[int, str]:
    """Run `command` (built by the caller from validated values only) on `server`; its exit
    status and its output (stdout and stderr together), or -1 when it ran past `timeout`."""
    channel = server.get_transport().open_session(timeout=timeout)
    try:
        channel.set_combine_stderr(True)
        channel.exec_command(command)
        output = bytearray()
        deadline = time.monotonic() + timeout
        channel.settimeout(1)
        while not (channel.exit_status_ready() and not channel.recv_ready()):
            if time.monotonic() > deadline:
                return -1, output.decode(errors="replace")
            with contextlib.suppress(TimeoutError, socket.timeout):
                chunk = channel.recv(65536)
                if not chunk:  # end of output: the exit status follows
                    channel.status_event.wait(max(0.0, deadline - time.monotonic()))
                output += chunk
        return channel.recv_exit_status(), output.decode(errors="replace")
    finally:
        channel.close()
