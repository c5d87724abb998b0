"""The `linux` test bed builds tenant networks for real, in network namespaces, and isolation is
proven by packets: two tenants with hosts on two leaves (so traffic crosses VXLAN), a shared
storage host behind the border leaf's policy routing, ping for every claim.

Needs root (CI runs as root): without it these tests fail, they do not skip."""

import ipaddress
import os
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from fabric.networks import safe
from fabric.networks.intent import Network, Port, Segment, StorageLeak
from fabric.testbed.linux import LinuxTestbed, LinuxTestbedError

STORAGE = StorageLeak(storage_vrf="storage", storage_prefix=ipaddress.ip_network("10.250.0.0/24"))
ADDRESSES = {
    "a1": "10.201.1.11/24",
    "a2": "10.201.1.12/24",
    "b1": "10.201.2.11/24",
    "b2": "10.201.2.12/24",
}


def _tenant(name: str, octet: int, vni: int, nodes: tuple[str, str]) -> Network:
    segment = Segment(
        name=f"{name}-seg",
        vlan=100 + octet,
        l2vni=vni,
        gateway=ipaddress.ip_interface(f"10.201.{octet}.1/24"),
    )
    ports = (
        Port(switch="leaf1", interface="swp1" if name == "ta" else "swp2", segment=segment.name,
             node=nodes[0]),
        Port(switch="leaf2", interface="swp1" if name == "ta" else "swp2", segment=segment.name,
             node=nodes[1]),
    )  # fmt: skip
    return Network(
        name=name, vrf=f"vrf-{name}", l3vni=50000 + octet, segments=(segment,), ports=ports,
        storage=STORAGE,
    )  # fmt: skip


TENANT_A = _tenant("ta", 1, 10101, ("a1", "a2"))
TENANT_B = _tenant("tb", 2, 10102, ("b1", "b2"))


def _require_root_and_tools():
    if os.geteuid() != 0:
        pytest.fail(
            "the linux test bed must run as root (it creates network namespaces); CI runs it "
            "as root, so run pytest as root here too rather than skipping it."
        )
    for tool in ("ip", "bridge", "ping"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool!r} is missing: install iproute2 and iputils-ping.")


def _reach(bed: LinuxTestbed, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], bool]:
    """Pings every (source, target) pair at once; a source is a node name or 'storage', a
    target a node name, 'storage' or an address."""

    def address(target: str) -> str:
        if target == "storage":
            return str(bed.storage_address.ip)
        return ADDRESSES[target].split("/")[0] if target in ADDRESSES else target

    def one(pair):
        source, target = pair
        if source == "storage":
            return bed.ping_from_storage(address(target))
        return bed.ping(source, address(target))

    with ThreadPoolExecutor(max_workers=16) as pool:
        return dict(zip(pairs, pool.map(one, pairs), strict=True))


@pytest.fixture(scope="module")
def bed():
    _require_root_and_tools()
    with LinuxTestbed(leaves=("leaf1", "leaf2")) as testbed:
        testbed.apply(TENANT_A, ADDRESSES)
        testbed.apply(TENANT_B, ADDRESSES)
        yield testbed
    assert testbed.leftovers() == []


def test_each_tenant_reaches_its_own_hosts_across_vxlan_and_storage(bed):
    wanted = [
        ("a1", "a2"), ("a2", "a1"), ("b1", "b2"), ("b2", "b1"),
        ("a1", "storage"), ("a2", "storage"), ("b1", "storage"), ("b2", "storage"),
        ("storage", "a1"), ("storage", "a2"), ("storage", "b1"), ("storage", "b2"),
        ("a2", "10.201.1.1"), ("b2", "10.201.2.1"),  # the gateway on the border, over VXLAN
    ]  # fmt: skip
    results = _reach(bed, wanted)
    assert [pair for pair, ok in results.items() if not ok] == []
    # a1 and a2 sit on different leaves: the hosts' namespaces are cabled to different leaves.
    leaves = {port.node: leaf_ns for _, port, leaf_ns, _ in bed.attachments()}
    assert leaves["a1"] != leaves["a2"] and leaves["b1"] != leaves["b2"]


def test_a_tenant_never_reaches_another_tenant_even_knowing_its_addresses(bed):
    forbidden = [
        (a, b) for a in ("a1", "a2") for b in ("b1", "b2")
    ] + [(b, a) for b in ("b1", "b2") for a in ("a1", "a2")] + [
        ("a1", "10.201.2.1"), ("a2", "10.201.2.1"),  # B's gateway address on the shared router
        ("b1", "10.201.1.1"), ("b2", "10.201.1.1"),
        ("a1", str(bed.vtep["leaf1"])), ("a1", str(bed.storage_gateway.ip)),  # router internals
    ]  # fmt: skip
    started = time.monotonic()
    results = _reach(bed, forbidden)
    assert [pair for pair, ok in results.items() if ok] == []
    assert time.monotonic() - started < 10  # every ping is bounded


def test_policy_routing_is_one_table_per_tenant_without_a_vrf_device(bed):
    plan = bed.plan_text()
    assert "type vrf" not in plan and "type vlan" not in plan
    assert "lookup 1000" in plan and "lookup 1001" in plan  # a table each for A and B
    assert "iif br10101 lookup 1000" in plan and "iif br10102 lookup 1001" in plan
    assert "not iif lo prohibit" in plan
    assert all(cmd[0] in {"ip", "bridge"} for cmd in bed.commands)
    assert all(cmd[1:3] in (("-n", cmd[2]), ("netns", "add"), ("netns", "exec"),
                            ("netns", "delete")) for cmd in bed.commands)  # fmt: skip
    assert all(ns.startswith(bed.prefix + "-") for ns in bed.namespaces)

    def route(*args):
        border = bed.leaf_ns[bed.border]
        done = subprocess.run(["ip", "-n", border, "route", "get", *args], capture_output=True,
                              text=True, timeout=10)  # fmt: skip
        return done.returncode, done.stdout + done.stderr

    # The main table knows every tenant (a router without VRFs) ...
    assert "dev br10102" in route("10.201.2.11")[1]
    # ... but what comes in from A's bridge is decided by A's table alone.
    assert route("10.250.0.2", "from", "10.201.1.11", "iif", "br10101")[1].count("table 1000")
    assert route("10.201.2.11", "from", "10.201.1.11", "iif", "br10101")[0] != 0
    assert route("10.201.1.11", "from", "10.201.2.11", "iif", "br10102")[0] != 0
    assert "dev br10101" in route("10.201.1.11", "from", "10.250.0.2", "iif", "st0")[1]


def test_detaching_a_port_cuts_the_node_off_and_teardown_leaves_nothing():
    _require_root_and_tools()
    testbed = LinuxTestbed(leaves=("leaf1", "leaf2"))
    try:
        testbed.apply(TENANT_A, ADDRESSES)
        assert _reach(testbed, [("a1", "a2"), ("a2", "storage")]) == {
            ("a1", "a2"): True,
            ("a2", "storage"): True,
        }
        leaf2 = testbed.leaf_ns["leaf2"]
        testbed.detach(TENANT_A, TENANT_A.ports[1])  # a2, the only tenant port on leaf2
        after = _reach(
            testbed,
            [("a2", "a1"), ("a2", "storage"), ("a2", "10.201.1.1"), ("a1", "a2"),
             ("storage", "a2"), ("a1", "storage")],
        )  # fmt: skip
        assert after == {
            ("a2", "a1"): False,
            ("a2", "storage"): False,
            ("a2", "10.201.1.1"): False,
            ("a1", "a2"): False,
            ("storage", "a2"): False,
            ("a1", "storage"): True,
        }
        assert f"ip -n {leaf2} link del vx10101" in testbed.plan_text()  # leaf2 dropped the VNI
        # Applying the intent again re-attaches it.
        testbed.apply(TENANT_A, ADDRESSES)
        assert _reach(testbed, [("a1", "a2")]) == {("a1", "a2"): True}
        testbed.remove(TENANT_A)
        left = testbed.leftovers()  # the fabric stays until teardown, the tenant's nodes go
        assert testbed.leaf_ns["leaf1"] in left and testbed.storage_ns in left
        assert not any(ns.endswith(("-h1", "-h2")) for ns in left)
    finally:
        testbed.teardown()
    assert testbed.leftovers() == []
    testbed.teardown()  # idempotent


def test_a_failing_command_names_itself_and_its_error():
    _require_root_and_tools()
    testbed = LinuxTestbed(leaves=("leaf1", "leaf2"))
    try:
        testbed.build()
        testbed._run("ip", "netns", "delete", testbed.leaf_ns["leaf1"])  # pull the rug out
        with pytest.raises(LinuxTestbedError) as failure:
            testbed.apply(TENANT_A, ADDRESSES)
        assert "ip -n " + testbed.leaf_ns["leaf1"] in str(failure.value)
        assert failure.value.stderr
    finally:
        testbed.teardown()
    assert testbed.leftovers() == []


def test_dry_run_shows_the_plan_and_touches_nothing():
    testbed = LinuxTestbed(leaves=("leaf1", "leaf2"), dry_run=True)
    testbed.apply(TENANT_A, ADDRESSES)
    assert testbed.commands and testbed.leftovers() == []
    assert "vxlan id 10101 local 10.254.0.1 dstport 4789" in testbed.plan_text()
    assert "fdb append 00:00:00:00:00:00 dev vx10101 dst 10.254.0.2" in testbed.plan_text()
    testbed.teardown()


def test_unsafe_or_conflicting_intent_never_reaches_the_command_line():
    testbed = LinuxTestbed(leaves=("leaf1", "leaf2"), dry_run=True)
    testbed.apply(TENANT_A, ADDRESSES)
    clash = _tenant("tc", 1, 10103, ("c1", "c2"))  # same prefix as A: no VRF to keep them apart
    with pytest.raises(safe.UnsafeValue):
        testbed.apply(clash, {"c1": "10.201.1.21/24", "c2": "10.201.1.22/24"})
    with pytest.raises(safe.UnsafeValue):  # an address outside its segment
        testbed.apply(TENANT_B, {**ADDRESSES, "b1": "10.201.9.9/24"})
    with pytest.raises(safe.UnsafeValue):
        LinuxTestbed(leaves=("leaf1; reboot",))
    stranger = Port(switch="spine9", interface="swp1", segment="ta-seg", node="a9")
    with pytest.raises(safe.UnsafeValue):
        testbed.attach(TENANT_A, stranger, "10.201.1.99/24")
