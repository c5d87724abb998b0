"""Lab servers are namespaces that behave like machines: the sushy-tools emulator's Redfish
reset boots one (a process tree in its own PID namespace, its own /root, its provisioning NIC
with the MAC the inventory expects) and pulls its plug; its disk keeps files across power
cycles until wiped; the lab leaves nothing behind.

Needs root (CI runs as root): without it these tests fail, they do not skip."""

import json
import os
import shutil
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from fabric.power.redfish import Redfish
from fabric.testbed import bmcs
from fabric.testbed.linux import LinuxTestbed
from fabric.testbed.servers import LabServerError, LabServers, PowerWatcher, ServerSpec, nic_mac
from portal import embedded

SERVERS = [
    ServerSpec("lab-h100-1", "NVIDIA H100 80GB HBM3", 8),
    ServerSpec("lab-a100-1", "NVIDIA A100-SXM4-80GB", 8),
]
EMULATOR_S = 15  # the emulator applies a power change after 1-11 s


def _require_root_and_tools():
    if os.geteuid() != 0:
        pytest.fail(
            "lab servers are namespaces and need root; CI runs these tests as root, so run "
            "pytest as root here too rather than skipping them."
        )
    for tool in ("ip", "unshare", "nsenter", "ping"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool!r} is missing: install iproute2, util-linux and iputils-ping.")


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    running = bmcs.start(
        names=[s.name for s in SERVERS], port=embedded.free_port(),
        directory=tmp_path_factory.mktemp("lab-bmc"), password=uuid.uuid4().hex,
    )  # fmt: skip
    yield running
    running.stop()


@pytest.fixture
def lab(tmp_path):
    _require_root_and_tools()
    servers = LabServers(SERVERS, root=tmp_path / "lab")
    with servers:
        yield servers
    assert servers.leftovers() == []


def _wait(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def _pid_namespace(pid) -> str:
    return os.readlink(f"/proc/{pid}/ns/pid")


def _cmdline(pid) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as raw:
        return raw.read().replace(b"\0", b" ").decode()


def test_a_redfish_reset_boots_the_server_and_force_off_pulls_its_plug(lab, emulator):
    drivers = {s.name: Redfish(emulator.access(s.name)) for s in lab}
    a, b = lab["lab-h100-1"], lab["lab-a100-1"]
    with PowerWatcher(lab, {s.name: emulator.access(s.name) for s in lab}) as watcher:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda d: d.power_on(pxe=True), drivers.values()))
        _wait(lambda: a.powered and b.powered, EMULATOR_S, "both servers to boot")
        assert watcher.errors == {}

        # A process tree in the server's own PID namespace: init, and the boot's sleep.
        _wait(lambda: len(a.processes()) == 2, 5, "the boot to settle into its sleep")
        pids = a.processes()
        assert {_pid_namespace(p) for p in pids} != {_pid_namespace("self")}
        assert any("sleep infinity" in _cmdline(p) for p in pids)
        assert set(pids).isdisjoint(b.processes())
        inside = a.run(["sh", "-c", "ls /proc | grep -c '^[0-9]'; cat /proc/1/cmdline"])
        assert inside.returncode == 0, inside.stderr
        count, init = inside.stdout.split("\n", 1)
        assert int(count) <= 5  # init, sleep, sh, ls and grep: nothing of the host's
        assert "servers/init.py" in init
        assert "lab-h100-1 booted" in a.run(["cat", "/var/log/boot.log"]).stdout
        assert json.loads(a.run(["cat", "/run/lab/server.json"]).stdout)["gpu_model"] == (
            "NVIDIA H100 80GB HBM3"
        )

        # Its own /root: not the host's, not the other server's; on its disk.
        marker = f"marker-{uuid.uuid4().hex}"
        assert a.run(["sh", "-c", f"echo written-in-a > /root/{marker}"]).returncode == 0
        assert a.run(["cat", f"/root/{marker}"]).stdout == "written-in-a\n"
        assert not os.path.exists(f"/root/{marker}")
        assert b.run(["test", "-e", f"/root/{marker}"]).returncode == 1
        assert (a.disk / "root" / marker).read_text() == "written-in-a\n"

        # The provisioning NIC, with the MAC derived from the name, cabled to the bridge.
        for server in (a, b):
            nic = json.loads(
                subprocess.run(
                    ["ip", "-n", server.netns, "-j", "link", "show", "eno1"],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            )[0]
            assert nic["address"] == nic_mac(server.name, 0) == server.provisioning_mac
        assert a.provisioning_mac != b.provisioning_mac
        gateway = lab.server_address.ip
        up = a.run(
            ["sh", "-c", "ip addr add 10.99.0.11/24 dev eno1 && ip link set eno1 up && "
             f"ping -n -q -c 1 -W 2 {gateway}"],
        )  # fmt: skip
        assert up.returncode == 0, up.stdout + up.stderr

        # ForceOff through the BMC: no process left in A; B runs on.
        drivers[a.name].power_off()
        _wait(lambda: not a.powered, EMULATOR_S, "the server to lose power")
        assert a.processes() == []
        assert a.netns_pids() == []
        assert b.powered and len(b.processes()) == 2
        assert [e[1:] for e in watcher.events if e[1] == a.name] == [
            (a.name, "off"), (a.name, "on"), (a.name, "off"),
        ]  # fmt: skip
    # The NIC lost the address the OS gave it, as at a power cut.
    addresses = subprocess.run(
        ["ip", "-n", a.netns, "-4", "-o", "addr", "show", "dev", "eno1"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert addresses == ""


def _boots(server) -> int:
    counted = server.run(["grep", "-c", "booted", "/var/log/boot.log"]).stdout.strip()
    return int(counted or 0)


def test_the_disk_keeps_files_across_power_cycles_until_wiped(lab):
    server = lab["lab-h100-1"]
    server.power_on()
    script = "echo kept > /root/file && mkdir -p /home/ubuntu && echo k > /home/ubuntu/key"
    assert server.run(["sh", "-c", script]).returncode == 0
    assert server.run(["sh", "-c", "useradd -M tenant && echo key > /etc/ssh/host"]).returncode == 0
    server.power_off()
    assert server.processes() == []

    server.power_on()
    kept = server.run(["sh", "-c", "cat /root/file /home/ubuntu/key /etc/ssh/host; id -u tenant"])
    assert kept.stdout.splitlines()[:3] == ["kept", "k", "key"]
    assert kept.returncode == 0  # the account made inside lives on the server's /etc
    assert subprocess.run(["id", "tenant"], capture_output=True).returncode != 0  # not the host's
    loopback = "import socket; socket.socket().bind(('127.0.0.1', 10001))"
    assert server.run(["python3", "-c", loopback]).returncode == 0  # lo works after a power cycle
    _wait(lambda: _boots(server) == 2, 5, "the second boot's log line")
    with pytest.raises(LabServerError, match="is on"):
        server.wipe()
    server.power_off()

    server.wipe()
    server.power_on()
    listing = server.run(["sh", "-c", "ls -A /root /home /etc/ssh; id -u tenant"])
    assert listing.stdout.split() == ["/etc/ssh:", "/home:", "/root:"]
    assert listing.returncode != 0  # the account went with the disk
    _wait(lambda: _boots(server) == 1, 5, "the first boot's log line on the blank disk")


def test_a_server_whose_disk_cannot_be_mounted_fails_to_boot_and_says_why(lab):
    server = lab["lab-a100-1"]
    server.power_on()
    server.power_off()
    shutil.rmtree(server.disk / "home")  # a broken disk
    with pytest.raises(LabServerError, match=r"did not boot(.|\n)*setup failed"):
        server.power_on()
    assert not server.powered and server.processes() == []
    server.wipe()
    server.power_on()
    assert server.powered


def test_a_tenant_nic_is_cabled_to_a_lab_leaf_and_reset_at_power_off(lab):
    server = lab["lab-a100-1"]
    with LinuxTestbed(leaves=("leaf1", "leaf2")) as fabric:
        leaf = fabric.leaf_ns["leaf2"]  # not the border leaf, which routes nothing unasked
        server.cable(leaf_ns=leaf, leaf_if="p9")
        subprocess.run(["ip", "-n", leaf, "addr", "add", "192.0.2.1/24", "dev", "p9"], check=True)
        server.power_on()
        assert server.run(["cat", "/sys/class/net/eth0/address"]).stdout.strip() == server.mac(
            "eth0"
        )
        up = server.run(
            ["sh", "-c", "ip addr add 192.0.2.2/24 dev eth0 && ip link set eth0 up && "
             "ping -n -q -c 1 -W 2 192.0.2.1"],
        )  # fmt: skip
        assert up.returncode == 0, up.stdout + up.stderr
        server.power_off()
        state = subprocess.run(
            ["ip", "-n", server.netns, "-j", "addr", "show", "dev", "eth0"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert json.loads(state)[0]["addr_info"] == []
        server.uncable("eth0")
    assert fabric.leftovers() == []


def test_the_host_reaches_the_servers_on_its_own_provisioning_link(tmp_path):
    """With `host_link`, dnsmasq and the portal run on this machine, as beside a real data
    center; a NIC the inventory knows keeps the inventory's MAC."""
    _require_root_and_tools()
    prefix = f"sf{uuid.uuid4().hex[:6]}"
    network = f"10.98.{uuid.uuid4().int % 250}.0/24"  # apart from any other lab on the host
    known = ServerSpec("lab-l40s-1", "NVIDIA L40S", 4, macs={"eno1": "02:FE:00:00:01:07"})
    servers = LabServers(
        [known], root=tmp_path / "lab", prefix=prefix, provisioning=network,
        host_link=f"{prefix}-pv",
    )  # fmt: skip
    with servers:
        server = servers["lab-l40s-1"]
        assert server.provisioning_mac == "02:fe:00:00:01:07"
        server.power_on()
        address = str(servers.provisioning_network[20])
        up = server.run(
            ["sh", "-c", f"ip addr add {address}/24 dev eno1 && ip link set eno1 up && "
             f"ping -n -q -c 1 -W 2 {servers.server_address.ip}"],
        )  # fmt: skip
        assert up.returncode == 0, up.stdout + up.stderr
    assert servers.leftovers() == []


def test_leaving_the_lab_removes_every_namespace_mount_and_process(tmp_path):
    _require_root_and_tools()
    servers = LabServers(SERVERS, root=tmp_path / "lab")
    with servers:
        for server in servers:
            server.power_on()
        # Processes the lab did not start itself: a daemon the boot forked into the
        # background, a process run in the chassis from outside, a service in the
        # provisioning namespace (where dnsmasq may run).
        server = servers["lab-h100-1"]
        server.run(["sh", "-c", "setsid sleep 300 > /dev/null 2>&1 &"])
        outside = subprocess.Popen(["ip", "netns", "exec", server.netns, "sleep", "300"])
        service = subprocess.Popen(["ip", "netns", "exec", servers.provisioning_ns, "sleep", "300"])
        _wait(lambda: len(server.netns_pids()) == 5, 5, "the processes to start")  # + unshare
        pids = [p for s in servers for p in s.processes()]
        assert len(pids) == 5  # init and sleep on each, the daemon on one
    assert servers.leftovers() == []
    assert outside.wait(5) == -9 and service.wait(5) == -9
    assert not any(os.path.exists(f"/proc/{pid}") for pid in pids)
    assert (tmp_path / "lab" / "lab-h100-1" / "disk" / "root").is_dir()  # disks stay


@pytest.mark.django_db
def test_make_run_takes_servers_of_every_model_with_a_bmc_and_the_inventorys_macs():
    from fabric.management.commands.lab_servers import bmc_accesses, lab_nodes, server_spec
    from fabric.services.power import bmc_set
    from tests.fabric.factories import GPUFactory, NetworkInterfaceFactory, NodeFactory

    site = NodeFactory().site  # a node without a BMC: never a lab server
    for model, count in (("H100", 3), ("A100", 2), ("L40S", 1)):
        for n in range(count):
            node = NodeFactory(site=site, name=f"{model.lower()}-{n}", gpu_model=model)
            GPUFactory.create_batch(2, node=node, model=model)
            bmc_set(
                node=node, url="http://127.0.0.1:1", system_id=f"/redfish/v1/Systems/{n}",
                username="admin", password=f"secret-{node.name}",
            )  # fmt: skip
    NetworkInterfaceFactory(node=node, name="eno1", mac="02:fe:00:00:00:2a")  # l40s-0's

    nodes = lab_nodes(5)
    assert [n.name for n in nodes] == ["a100-0", "h100-0", "l40s-0", "a100-1", "h100-1"]
    spec = server_spec(next(n for n in nodes if n.name == "l40s-0"))
    assert (spec.gpu_model, spec.gpus, dict(spec.macs)) == (
        "L40S",
        2,
        {"eno1": "02:fe:00:00:00:2a"},
    )
    accesses = bmc_accesses([n.name for n in nodes])
    assert accesses["h100-1"].password == "secret-h100-1"
    assert accesses["h100-1"].system_id == "/redfish/v1/Systems/1"
