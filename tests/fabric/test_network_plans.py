"""Plans: attach/detach compile into exact, ordered commands per switch; a dry run sends nothing;
nothing a tenant typed, and no unsafe value, ever reaches a device command."""

import ipaddress

import pytest

from fabric.models import NetworkInterface, NetworkPush, Node, Site
from fabric.networks import safe
from fabric.networks.drivers import driver_for
from fabric.networks.drivers.base import Step
from fabric.networks.intent import Network, Port, Segment
from fabric.services import networks
from fabric.services.allocations import allocation_request
from fabric.testbed.fleet import fleet_generate
from portal.services.audit import Actor
from tests.portal.factories import member, organization_of

SYSTEM = Actor.system("task")
H100 = "NVIDIA H100 80GB HBM3"
INJECTIONS = [
    "Ethernet1\nreload",
    "Ethernet1; reload",
    "Ethernet1 | include secret",
    "Ethernet1\x00",
    "Ethernet1\x1b[2J",
    "E" * 49,
    "",
    "vlan 5\r\nno shutdown",
]


def _network(**ports):
    segment = Segment("seg7", vlan=100, l2vni=10100, gateway=ipaddress.ip_interface("10.1.0.1/24"))
    attached = tuple(
        Port(switch, interface, "seg7", "node1") for switch, interface in ports.items()
    )
    return Network(name="t3n7", vrf="T3N7", l3vni=50007, segments=(segment,), ports=attached)


def test_an_arista_attach_renders_the_exact_ordered_commands_and_its_undo():
    network = _network(leaf1="Ethernet5")
    driver = driver_for("arista_eos")
    steps = [Step("network_add", network), Step("port_add", network, network.ports[0])]
    assert driver.render_all(steps) == [
        "vrf instance T3N7",
        "exit",
        "ip routing vrf T3N7",
        "vlan 100",
        "name seg7",
        "exit",
        "interface Vlan100",
        "vrf T3N7",
        "ip address virtual 10.1.0.1/24",
        "exit",
        "interface Vxlan1",
        "vxlan vrf T3N7 vni 50007",
        "vxlan vlan 100 vni 10100",
        "exit",
        "interface Ethernet5",
        "description t3n7-node1",
        "switchport access vlan 100",
        "no shutdown",
        "exit",
    ]
    undo = driver.render_all([s.inverse() for s in reversed(steps)])
    assert undo[:4] == [
        "interface Ethernet5",
        "no description",
        "no switchport access vlan 100",
        "shutdown",
    ]
    assert undo[-1] == "no vrf instance T3N7"


@pytest.mark.parametrize("platform", ["arista_eos", "cisco_nxos", "juniper_junos", "dell_sonic"])
def test_every_driver_renders_add_and_remove_for_the_same_intent(platform):
    network = _network(leaf1="xe-0/0/5")
    driver = driver_for(platform)
    for op in ("network_add", "network_remove", "port_add", "port_remove"):
        lines = driver.render(Step(op, network, network.ports[0]))
        assert lines and all("\n" not in line and len(line) < 200 for line in lines)


@pytest.mark.parametrize(
    ("platform", "add", "remove"),
    [
        (
            "arista_eos",
            ["switchport mode trunk", "switchport trunk allowed vlan add 100", "no shutdown"],
            ["switchport trunk allowed vlan remove 100"],
        ),
        (
            "cisco_nxos",
            ["switchport mode trunk", "switchport trunk allowed vlan add 100", "no shutdown"],
            ["switchport trunk allowed vlan remove 100"],
        ),
        (
            "dell_sonic",
            ["switchport mode trunk", "switchport trunk allowed Vlan add 100", "no shutdown"],
            ["switchport trunk allowed Vlan remove 100"],
        ),
    ],
)
def test_a_trunk_port_gains_and_loses_only_the_networks_vlan(platform, add, remove):
    """The services host's port carries every network's jump host: removing one network
    must not shut it, wipe it or touch the other networks' VLANs."""
    network = _network()
    trunk = Port("leaf1", "Ethernet9", "seg7", tagged=True)
    driver = driver_for(platform)
    assert driver.render(Step("port_add", network, trunk)) == ["interface Ethernet9", *add, "exit"]
    assert driver.render(Step("port_remove", network, trunk)) == [
        "interface Ethernet9",
        *remove,
        "exit",
    ]


def test_a_junos_trunk_port_gains_and_loses_only_the_networks_vlan_member():
    network = _network()
    trunk = Port("leaf1", "xe-0/0/9", "seg7", tagged=True)
    driver = driver_for("juniper_junos")
    member = "set interfaces xe-0/0/9 unit 0 family ethernet-switching vlan members seg7"
    assert driver.render(Step("port_add", network, trunk)) == [
        "set interfaces xe-0/0/9 unit 0 family ethernet-switching interface-mode trunk",
        member,
    ]
    assert driver.render(Step("port_remove", network, trunk)) == [
        "delete" + member.removeprefix("set")
    ]


@pytest.mark.parametrize("text", INJECTIONS)
def test_unsafe_values_are_refused_before_any_command_exists(text):
    with pytest.raises(safe.UnsafeValue):
        Port("leaf1", text, "seg7")
    with pytest.raises(safe.UnsafeValue):
        safe.name(text if text else "x;y")
    for bad in (0, 4095, -1, True, "100"):
        with pytest.raises(safe.UnsafeValue):
            safe.number("vlan", bad)


@pytest.fixture
def tenant_nodes(db):
    fleet_generate(sites=1, nodes_per_site=32, actor=SYSTEM, spare_fraction=0)
    org = organization_of(member())
    allocation_request(
        organization=org, shape="node", gpu_model=H100, count=3, actor=SYSTEM,
        topology="any",
    )  # fmt: skip
    nodes = list(Node.objects.filter(organization=org).order_by("name"))
    return org, nodes


def _eth0(nodes):
    return [NetworkInterface.objects.get(node=n, name="eth0") for n in nodes]


def test_a_dry_run_shows_the_plan_per_switch_and_sends_nothing(tenant_nodes):
    org, nodes = tenant_nodes
    network = networks.network_create(
        organization=org, site=Site.objects.get(), label="prod; reload\n| bash", actor=SYSTEM
    )
    pushes = networks.network_attach(
        network=network, interfaces=_eth0(nodes), actor=SYSTEM, dry_run=True
    )
    assert {p.status for p in pushes} == {NetworkPush.Status.DRY_RUN}
    everything = [line for p in pushes for line in p.commands]
    assert f"vrf instance {network.vrf}" in everything
    assert sum(line.startswith("switchport access vlan") for line in everything) == 3
    vlan = network.segments.get().vlan.value  # and the trunk to the site's jump host
    assert everything.count(f"switchport trunk allowed vlan add {vlan}") == 1
    assert not any("reload" in line or "bash" in line or "prod" in line for line in everything)
    assert not network.attachments.exists()  # nothing claimed, nothing sent


def test_numbers_and_prefixes_come_from_the_pools_and_go_back_on_delete(tenant_nodes):
    org, _ = tenant_nodes
    site = Site.objects.get()
    first = networks.network_create(organization=org, site=site, label="a", actor=SYSTEM)
    second = networks.network_create(organization=org, site=site, label="b", actor=SYSTEM)
    seg1, seg2 = first.segments.get(), second.segments.get()
    assert seg1.vlan.value != seg2.vlan.value and first.l3vni.value != second.l3vni.value
    assert not ipaddress.ip_network(seg1.prefix).overlaps(ipaddress.ip_network(seg2.prefix))
    vlan = seg1.vlan.value
    networks.network_delete(network=first, actor=SYSTEM)
    third = networks.network_create(organization=org, site=site, label="c", actor=SYSTEM)
    assert third.segments.get().vlan.value == vlan  # the VLAN went back and came out again


def test_infiniband_partitions_are_written_for_opensm_with_only_valid_values(tmp_path):
    from fabric.networks.drivers import opensm

    content = opensm.render({"t3n7": (0x105, ["b8ce:f600:0100:0011", "b8ce:f600:0100:0012"])})
    assert content.splitlines()[1:] == [
        "Default=0x7fff, ipoib : ALL=full ;",
        "t3n7=0x0105, ipoib : 0xb8cef60001000011=full, 0xb8cef60001000012=full ;",
    ]
    with pytest.raises(safe.UnsafeValue):
        opensm.render({"t3n7 ;\nevil": (0x105, [])})
    with pytest.raises(safe.UnsafeValue):
        opensm.render({"t3n7": (0x105, ["0x1234 ; ALL=full"])})
    target = tmp_path / "dc1.partitions.conf"
    assert opensm.write(target, content) is True
    assert opensm.write(target, content) is False  # unchanged: not rewritten, OpenSM not poked
