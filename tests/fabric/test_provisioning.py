"""The provisioning network: reservations rendered from the inventory for the servers with a
BMC, iPXE scripts that carry each server's NoCloud seed and are served to that server only, and,
in network namespaces, a real dnsmasq (run by `manage.py provisioning_dnsmasq`) leasing the
reserved address to a DHCP client whose MAC is in the inventory, the client fetching its iPXE
script from the portal over HTTP, and a changed reservation taking effect on the next lease.

The namespace test needs root (CI runs as root): without it it fails, it does not skip."""

import contextlib
import ctypes
import io
import ipaddress
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
from django.db import IntegrityError, transaction

from catalog.metadata import metadata_token
from catalog.models import Order, OrderNode, OrderState
from catalog.services.products import product_upsert
from fabric.models import IPAddress, NetworkInterface, Prefix
from fabric.networks.safe import UnsafeValue
from fabric.provisioning import dnsmasq
from fabric.services.changes import inventory_delete, inventory_save
from fabric.services.power import bmc_set
from fabric.services.provisioning import (
    provisioning_addresses_sync,
    provisioning_hosts,
    provisioning_render,
)
from portal.services.audit import Actor
from tests.conftest import _test_database_url
from tests.fabric.factories import NetworkInterfaceFactory, NodeFactory
from tests.portal.factories import member, organization_of

ROOT = Path(__file__).resolve().parents[2]
ACTOR = Actor.system()
SERVER = "10.99.0.1"
PORTAL = f"http://{SERVER}:8000"
MACS = {"gpu-a": "02:aa:00:00:00:0a", "gpu-b": "02:aa:00:00:00:0b", "gpu-c": "02:aa:00:00:00:0c"}


@pytest.fixture
def provisioning_settings(settings):
    settings.PROVISIONING_PREFIX = "10.99.0.0/24"
    settings.PROVISIONING_SERVER_ADDRESS = SERVER
    settings.PROVISIONING_PORTAL_URL = PORTAL
    settings.PROVISIONING_INTERFACE_NAMES = ["eno1"]
    settings.PROVISIONING_INTERFACE = "prov0"
    return settings


def _inventory() -> dict:
    """gpu-a and gpu-b have BMCs, gpu-c has none; each has a provisioning NIC (eno1), gpu-a
    also a data NIC (eth0)."""
    nodes = {}
    for name, mac in MACS.items():
        node = NodeFactory(name=name)
        NetworkInterfaceFactory(node=node, name="eno1", mac=mac)
        if name != "gpu-c":
            bmc_set(node=node, url=f"https://bmc-{name}.example", username="u", password="p")
        nodes[name] = node
    NetworkInterfaceFactory(node=nodes["gpu-a"], name="eth0", mac="02:bb:00:00:00:0a")
    return nodes


def _reserved(name: str) -> IPAddress:
    return IPAddress.objects.get(prefix__vrf="provisioning", interface__mac=MACS[name])


def _host_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith("#")]


def _live_order(node) -> OrderNode:
    owner = member()
    product = product_upsert(slug="bare-metal", name="Bare metal", kind="bare_metal", summary="-")
    order = Order.objects.create(
        organization=organization_of(owner), created_by=owner, product=product,
        offering="bare_metal", spec={"gpu_model": "X", "nodes": 1}, hourly_quote=1,
        state=OrderState.POWERING,
    )  # fmt: skip
    return OrderNode.objects.create(
        order=order, node_id=node.pk, hostname=node.name, metadata_nonce=secrets.token_hex(16)
    )


# --- rendering ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_each_provisioning_nic_of_a_server_with_a_bmc_gets_one_reservation_line(
    provisioning_settings, tmp_path
):
    nodes = _inventory()

    provisioning_addresses_sync(actor=ACTOR)
    rendered = provisioning_render(directory=tmp_path)

    a, b = _reserved("gpu-a"), _reserved("gpu-b")
    assert _host_lines(rendered.hosts) == [
        f"{MACS['gpu-a']},gpu-a,{a.address}",
        f"{MACS['gpu-b']},gpu-b,{b.address}",
    ]
    prefix = Prefix.objects.get(vrf="provisioning")
    assert str(prefix.prefix) == "10.99.0.0/24"
    assert {str(x.address) for x in prefix.addresses.all()} == {
        SERVER,
        str(a.address),
        str(b.address),
    }
    assert not IPAddress.objects.filter(interface__node=nodes["gpu-c"]).exists()
    assert not IPAddress.objects.filter(interface__name="eth0").exists()

    # Again: the same addresses, nothing new; the files would not change.
    provisioning_addresses_sync(actor=ACTOR)
    assert provisioning_render(directory=tmp_path) == rendered
    assert prefix.addresses.count() == 3

    # The main configuration: only reserved clients, iPXE sent to the portal; dnsmasq accepts it.
    conf = rendered.conf.splitlines()
    assert "dhcp-range=set:provisioning,10.99.0.0,static,255.255.255.0,3600" in conf
    assert "dhcp-ignore=tag:!known" in conf and "interface=prov0" in conf and "port=0" in conf
    assert f"dhcp-hostsfile={tmp_path}/hosts" in conf
    assert f"dhcp-boot=tag:ipxe,{PORTAL}/provisioning/ipxe/" in conf
    dnsmasq.dnsmasq_apply(directory=tmp_path, conf=rendered.conf, hosts=rendered.hosts)
    check = subprocess.run(
        [_tool("dnsmasq"), "--test", f"--conf-file={tmp_path / dnsmasq.CONF}"],
        capture_output=True, text=True, timeout=10,
    )  # fmt: skip
    assert check.returncode == 0 and "syntax check OK" in check.stderr, check.stderr

    # gpu-b loses its BMC: its reservation and its address go.
    inventory_delete(obj=nodes["gpu-b"].bmc, actor=ACTOR)
    provisioning_addresses_sync(actor=ACTOR)
    assert _host_lines(provisioning_render(directory=tmp_path).hosts) == [
        f"{MACS['gpu-a']},gpu-a,{a.address}"
    ]
    assert not IPAddress.objects.filter(address=b.address, prefix=prefix).exists()


@pytest.mark.django_db
def test_a_malformed_mac_or_name_never_reaches_the_hosts_file(provisioning_settings, tmp_path):
    node = NodeFactory(name="gpu-x")
    for bad in ("02:AA:00:00:00:01", "02-aa-00-00-00-01", "02:aa:00:00:00", "not a mac"):
        with pytest.raises(IntegrityError), transaction.atomic():
            NetworkInterface.objects.create(node=node, name="eno9", mac=bad)

    assert dnsmasq.mac("02-AA-00-00-00-01") == "02:aa:00:00:00:01"
    assert dnsmasq.mac("02aa.0000.0001") == dnsmasq.mac("02AA00000001") == "02:aa:00:00:00:01"
    for bad in (
        "02:aa:00:00:00",
        "02:aa:00:00:00:01\n",
        "02:aa:00:00:00:01,x",
        "01:00:5e:00:00:01",
    ):
        with pytest.raises(UnsafeValue):
            dnsmasq.mac(bad)
    for bad in ("gpu a", "GPU-A", "gpu-a\ndhcp-option=3,10.0.0.9", "-gpu", "g" * 64, ""):
        with pytest.raises(UnsafeValue):
            dnsmasq.Host(mac="02:aa:00:00:00:01", hostname=bad, address="10.99.0.9")
    network = dnsmasq.Network(
        interface="prov0", prefix="10.99.0.0/24", server=SERVER, boot_url=f"{PORTAL}/x/"
    )
    host = dnsmasq.Host(mac="02:aa:00:00:00:01", hostname="gpu-a", address="10.99.0.9")
    twin = dnsmasq.Host(mac="02:aa:00:00:00:01", hostname="gpu-b", address="10.99.0.10")
    for hosts in ([host, twin], [dnsmasq.Host(mac=host.mac, hostname="a", address=SERVER)]):
        with pytest.raises(UnsafeValue):
            dnsmasq.render_hosts(network, hosts)
    for boot_url in ("http://10.99.0.1/a,b", "http://10.99.0.1/a b", "http://x/${x}", "file:/x"):
        with pytest.raises(UnsafeValue):
            dnsmasq.Network(
                interface="prov0", prefix="10.99.0.0/24", server=SERVER, boot_url=boot_url
            )

    # A server whose name is not a hostname keeps its address but gets no reservation line.
    odd = NodeFactory(name="GPU_Odd")
    NetworkInterfaceFactory(node=odd, name="eno1", mac="02:aa:00:00:00:99")
    bmc_set(node=odd, url="https://bmc-odd.example", username="u", password="p")
    provisioning_addresses_sync(actor=ACTOR)
    assert provisioning_hosts() == []
    assert _host_lines(provisioning_render(directory=tmp_path).hosts) == []


@pytest.mark.django_db
def test_the_runner_once_writes_the_files_from_the_inventory(provisioning_settings, tmp_path):
    _inventory()
    out = io.StringIO()
    call_command("provisioning_dnsmasq", once=True, directory=str(tmp_path), stdout=out)
    assert f"written to {tmp_path}" in out.getvalue()
    hosts = _host_lines((tmp_path / dnsmasq.HOSTS).read_text())
    assert [line.split(",")[1] for line in hosts] == ["gpu-a", "gpu-b"]
    assert (tmp_path / dnsmasq.CONF).read_text().startswith("# The provisioning network")
    assert oct((tmp_path / dnsmasq.HOSTS).stat().st_mode & 0o777) == "0o644"


# --- the iPXE scripts ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_server_gets_its_ipxe_script_from_its_own_address_only(provisioning_settings, client):
    nodes = _inventory()
    provisioning_addresses_sync(actor=ACTOR)
    a, b = str(_reserved("gpu-a").address), str(_reserved("gpu-b").address)

    chain = client.get("/provisioning/ipxe/", REMOTE_ADDR=a)
    assert chain.status_code == 200
    assert chain.content.decode() == (
        f"#!ipxe\nchain --autofree {PORTAL}/provisioning/ipxe/${{netX/mac}}\n"
    )

    def script(mac, source):
        return client.get(f"/provisioning/ipxe/{mac}", REMOTE_ADDR=source)

    # Unknown, malformed, without a BMC, or asked for from another server's address: 404.
    assert script("02:aa:00:00:00:ff", a).status_code == 404
    assert script("02:aa:00:00:00:0", a).status_code == 404
    assert script(MACS["gpu-c"], a).status_code == 404
    assert script(MACS["gpu-a"], b).status_code == 404
    assert script(MACS["gpu-a"], "127.0.0.1").status_code == 404

    # No order holds it: boot from disk.
    idle = script(MACS["gpu-a"], a)
    assert idle.status_code == 200 and idle.content.decode().splitlines()[-1] == "exit"

    # A live order holds it: the kernel line carries its NoCloud seed, which answers.
    order_node = _live_order(nodes["gpu-a"])
    seed = f"{PORTAL}/metadata/{metadata_token(order_node)}/"
    body = script(MACS["gpu-a"].upper().replace(":", "-"), a).content.decode()
    assert body.startswith("#!ipxe\n")
    assert re.search(rf"^kernel \S+ .*ds=nocloud-net;s={re.escape(seed)}$", body, re.M), body
    assert body.rstrip().endswith("boot")
    meta = client.get(seed.removeprefix(PORTAL) + "meta-data").content.decode()
    assert "local-hostname: gpu-a" in meta

    # The order ends: back to booting from disk.
    Order.objects.filter(pk=order_node.order_id).update(state=OrderState.TERMINATED)
    assert script(MACS["gpu-a"], a).content.decode().splitlines()[-1] == "exit"


# --- a real dnsmasq in network namespaces --------------------------------------------------------


def _tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        package = {"dnsmasq": "dnsmasq-base", "busybox": "busybox", "ip": "iproute2"}[name]
        pytest.fail(f"{name!r} is missing: install the Debian package {package} (make test does).")
    return path


def _require_root():
    if os.geteuid() != 0:
        pytest.fail(
            "the provisioning test creates network namespaces and runs dnsmasq, so it must run "
            "as root; CI runs it as root, so run pytest as root here too rather than skip it."
        )


_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000


def _socket_in(namespace: str, address: str) -> socket.socket:
    """A listening TCP socket inside `namespace`: this thread enters it only to create the
    socket (a socket stays in the namespace it was made in) and comes straight back."""
    with open("/proc/thread-self/ns/net") as home, open(f"/run/netns/{namespace}") as there:
        if _libc.setns(there.fileno(), CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns into the test namespace")
        try:
            return socket.create_server((address, 0))
        finally:
            if _libc.setns(home.fileno(), CLONE_NEWNET) != 0:
                os.write(2, b"could not return to the test process network namespace\n")
                os._exit(70)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def _portal_listening_in(namespace: str, address: str):
    """The portal's WSGI application served by Django's threaded server on a socket inside the
    provisioning namespace, so servers there reach it (and it sees their addresses)."""
    from portal.wsgi import application

    listener = _socket_in(namespace, address)
    server = ThreadedWSGIServer((address, 0), _QuietHandler, bind_and_activate=False)
    server.socket.close()
    server.socket, server.server_address = listener, listener.getsockname()
    server.server_name, server.server_port = address, server.server_address[1]
    server.setup_environ()  # what binding would have done
    server.set_app(application)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def _run(*argv: str, timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"{argv} failed ({done.returncode}): {done.stderr}{done.stdout}")
    return done


@pytest.fixture
def lab_network():
    """Two namespaces joined by a veth: `dhcp` (the provisioning side, prov0 with the server
    address) and `server` (eth0 with gpu-a's MAC). Removed, with every process in them, after
    the test, whatever happened."""
    _require_root()
    ip = _tool("ip")
    tag = f"sfp{secrets.token_hex(3)}"
    spaces = {"dhcp": f"{tag}-d", "server": f"{tag}-s"}
    directory = Path(tempfile.mkdtemp(prefix=f"{tag}-", dir="/tmp"))
    directory.chmod(0o755)  # dnsmasq re-reads its hosts file as nobody
    try:
        for name in spaces.values():
            _run(ip, "netns", "add", name)
            _run(ip, "-n", name, "link", "set", "lo", "up")
        _run(
            ip, "link", "add", "prov0", "netns", spaces["dhcp"], "type", "veth", "peer", "name",
            "eth0", "netns", spaces["server"], "address", MACS["gpu-a"],
        )  # fmt: skip
        _run(ip, "-n", spaces["dhcp"], "addr", "add", f"{SERVER}/24", "dev", "prov0")
        _run(ip, "-n", spaces["dhcp"], "link", "set", "prov0", "up")
        _run(ip, "-n", spaces["server"], "link", "set", "eth0", "up")
        yield spaces, directory
    finally:
        for name in spaces.values():
            pids = _run(ip, "netns", "pids", name, check=False).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), 9)
            _run(ip, "netns", "del", name, check=False)
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def _runner(*, namespace: str, directory: Path, portal_url: str, log: Path):
    """`manage.py provisioning_dnsmasq` as `make run` starts it, on the test database."""
    env = {
        **os.environ,
        "DATABASE_URL": _test_database_url(),
        "PROVISIONING_PREFIX": "10.99.0.0/24",
        "PROVISIONING_SERVER_ADDRESS": SERVER,
        "PROVISIONING_PORTAL_URL": portal_url,
        "PROVISIONING_INTERFACE_NAMES": "eno1",
        "PYTHONUNBUFFERED": "1",
    }
    argv = [
        sys.executable, "manage.py", "provisioning_dnsmasq", "--netns", namespace,
        "--interface", "prov0", "--directory", str(directory), "--interval", "0.3",
    ]  # fmt: skip
    with log.open("w") as output:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=output, stderr=output)
    try:
        _until(lambda: "provisioning dnsmasq up" in log.read_text(), process, log, 60)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _until(condition, process, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"the runner exited ({process.returncode}):\n{log.read_text()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; the runner said:\n{log.read_text()}")
        time.sleep(0.1)


def _lease(namespace: str, directory: Path) -> dict:
    """busybox udhcpc once on eth0 (announcing itself as iPXE, option 175): the offer it bound,
    its address applied to eth0 by the hook script."""
    result = directory / "lease.env"
    result.unlink(missing_ok=True)
    hook = directory / "udhcpc-hook"
    hook.write_text(
        "#!/bin/sh\n"
        'case "$1" in bound|renew)\n'
        '  ip addr flush dev "$interface"\n'
        '  ip addr add "$ip/$mask" dev "$interface"\n'
        f'  env > "{result}";;\n'
        "esac\n"
    )
    hook.chmod(0o755)
    _run(_tool("ip"), "-n", namespace, "addr", "flush", "dev", "eth0")
    _run(
        _tool("ip"), "netns", "exec", namespace, _tool("busybox"), "udhcpc", "-i", "eth0",
        "-f", "-q", "-n", "-t", "6", "-T", "1", "-s", str(hook), "-x", "0xaf:01",
    )  # fmt: skip
    return dict(line.split("=", 1) for line in result.read_text().splitlines() if "=" in line)


def _fetch(namespace: str, url: str) -> subprocess.CompletedProcess:
    return _run(
        _tool("ip"), "netns", "exec", namespace, _tool("busybox"), "wget", "-q", "-O", "-", url,
        check=False,
    )  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_dnsmasq_leases_the_reservation_and_the_server_boots_from_its_ipxe_script(
    provisioning_settings, lab_network, tmp_path
):
    spaces, directory = lab_network
    nodes = _inventory()
    provisioning_addresses_sync(actor=ACTOR)
    order_node = _live_order(nodes["gpu-a"])
    a, b = _reserved("gpu-a"), _reserved("gpu-b")
    log = tmp_path / "runner.log"

    with _portal_listening_in(spaces["dhcp"], SERVER) as port:
        portal = f"http://{SERVER}:{port}"
        provisioning_settings.PROVISIONING_PORTAL_URL = portal
        provisioning_settings.ALLOWED_HOSTS = [*provisioning_settings.ALLOWED_HOSTS, SERVER]
        with _runner(
            namespace=spaces["dhcp"], directory=directory, portal_url=portal, log=log
        ) as runner:
            # DHCP: the reserved address, the server's name, iPXE sent to the portal's chain.
            lease = _lease(spaces["server"], directory)
            assert lease["ip"] == str(a.address) and lease["mask"] == "24"
            assert lease["hostname"] == "gpu-a"
            assert lease["boot_file"] == f"{portal}/provisioning/ipxe/"
            assert "router" not in lease and "dns" not in lease

            # HTTP from the server's namespace: the chain, then its own script with its seed.
            chain = _fetch(spaces["server"], lease["boot_file"])
            assert chain.returncode == 0 and "${netX/mac}" in chain.stdout
            script = _fetch(spaces["server"], f"{portal}/provisioning/ipxe/{MACS['gpu-a']}")
            seed = f"{portal}/metadata/{metadata_token(order_node)}/"
            assert script.returncode == 0 and f"ds=nocloud-net;s={seed}" in script.stdout
            meta = _fetch(spaces["server"], f"{seed}meta-data")
            assert "local-hostname: gpu-a" in meta.stdout
            # Another server's script is not this server's to read.
            other = _fetch(spaces["server"], f"{portal}/provisioning/ipxe/{MACS['gpu-b']}")
            assert other.returncode != 0 and "404" in other.stderr

            # The reservation changes in IPAM: the runner rewrites the hosts file and signals
            # dnsmasq, and the next lease follows.
            moved = ipaddress.ip_address("10.99.0.50")
            assert moved not in (a.address, b.address)
            a.address = moved
            inventory_save(obj=a, actor=ACTOR)
            hosts = directory / dnsmasq.HOSTS
            _until(lambda: f"gpu-a,{moved}" in hosts.read_text(), runner, log, 20)
            reads = f"read {hosts}"
            _until(lambda: log.read_text().count(reads) >= 2, runner, log, 20)
            lease = _lease(spaces["server"], directory)
            assert lease["ip"] == str(moved)
            script = _fetch(spaces["server"], f"{portal}/provisioning/ipxe/{MACS['gpu-a']}")
            assert f"ds=nocloud-net;s={seed}" in script.stdout
        assert runner.returncode == 0, log.read_text()
    assert not _run(_tool("ip"), "netns", "pids", spaces["dhcp"]).stdout.split()
