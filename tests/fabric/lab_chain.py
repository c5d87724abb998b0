"""The boot chain of the lab's servers for tests: the portal's WSGI application served where the
servers reach it, a real dnsmasq on the rendered files, key pairs, and an SSH login that trusts
only the host keys a server reported."""

import base64
import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import paramiko
import pytest
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler

from fabric.provisioning import dnsmasq


def require_root_and_tools():
    if os.geteuid() != 0:
        pytest.fail(
            "lab servers are namespaces and dnsmasq binds DHCP: run pytest as root (CI does) "
            "rather than skipping this test."
        )
    for path in ("/usr/sbin/sshd", "/usr/sbin/dnsmasq", "/usr/bin/python3"):
        if not os.access(path, os.X_OK):
            pytest.fail(f"{path} is missing: `make test` installs its Debian package.")
    for tool in ("ip", "unshare", "nsenter", "busybox", "ssh-keygen", "useradd"):
        if shutil.which(tool) is None and shutil.which(tool, path="/usr/sbin:/sbin") is None:
            pytest.fail(f"{tool!r} is missing: `make test` installs its Debian package.")


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def portal_on(listener: socket.socket):
    """The portal's WSGI application served on `listener` by Django's threaded server."""
    from portal.wsgi import application

    address = listener.getsockname()
    server = ThreadedWSGIServer(address, _QuietHandler, bind_and_activate=False)
    server.socket.close()
    server.socket, server.server_address = listener, address
    server.server_name, server.server_port = address
    server.setup_environ()
    server.set_app(application)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@contextlib.contextmanager
def dnsmasq_running(directory: Path, log: Path):
    with log.open("w") as output:
        process = subprocess.Popen(
            dnsmasq.dnsmasq_argv(directory=directory), stdout=output, stderr=output
        )
    try:
        wait(
            lambda: f"read {directory / dnsmasq.HOSTS}" in log.read_text(),
            20,
            "dnsmasq to start",
            log,
        )
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait(condition, timeout: float, what: str, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            said = log.read_text(errors="replace")[-4000:] if log and log.exists() else ""
            pytest.fail(f"timed out after {timeout} s waiting for {what}\n{said}")
        time.sleep(0.2)


def keypair(directory: Path, name: str) -> tuple[Path, str]:
    path = directory / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)], check=True
    )
    return path, path.with_suffix(".pub").read_text().strip()


def login(address: str, host_keys: dict, key: Path) -> str:
    """`hostname` over SSH as ubuntu with `key`, trusting only the reported host keys."""
    client = paramiko.SSHClient()
    for public_key in host_keys.values():
        key_type, blob = public_key.split()[:2]
        host_key = paramiko.PKey.from_type_string(key_type, base64.b64decode(blob))
        client.get_host_keys().add(address, key_type, host_key)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(
            address, username="ubuntu", key_filename=str(key), timeout=10,
            allow_agent=False, look_for_keys=False,
        )  # fmt: skip
        _, stdout, _ = client.exec_command("hostname", timeout=10)
        return stdout.read().decode().strip()
    finally:
        client.close()


def ssh_config(path: Path, key: Path, known_hosts: Path) -> Path:
    """The customer laptop's ~/.ssh/config: this key only, these known hosts only, strictly
    (ProxyJump passes -F on to the jump's ssh, so both hops read it)."""
    path.write_text(
        "Host *\n"
        f"  IdentityFile {key}\n  IdentitiesOnly yes\n  BatchMode yes\n"
        f"  UserKnownHostsFile {known_hosts}\n  StrictHostKeyChecking yes\n"
        "  ConnectTimeout 10\n  LogLevel ERROR\n"
    )
    return path
