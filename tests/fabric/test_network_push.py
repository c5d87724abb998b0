"""Pushing tenant networks to real SSH switches (FakeNOS, one per vendor): what the plan says is
what the devices hold, saved only after every switch succeeded; a refusal anywhere undoes
everything everywhere."""

import pytest

from fabric.models import NetworkAttachment, NetworkInterface, NetworkPush
from fabric.networks.push import PushFailed
from fabric.services import networks
from fabric.testbed import inventory
from portal.services.audit import Actor
from tests.portal.factories import member, organization_of

SYSTEM = Actor.system("task")
pytestmark = pytest.mark.django_db


@pytest.fixture
def lab(switches):
    """Fresh device configs and a site with 2 tenant nodes behind each of the 4 leaves."""
    for device in switches:
        switches.set_reject(device.name, [])
    org = organization_of(member())
    site, nodes = inventory.build(switches=switches, nodes_per_switch=3, organization=org)
    network = networks.network_create(organization=org, site=site, label="lab", actor=SYSTEM)
    baseline = {d.name: switches.running_lines(d.name) for d in switches}
    return org, network, nodes, baseline


def _eth0(nodes):
    return [NetworkInterface.objects.get(node=n, name="eth0") for n in nodes]


def _on(switches, name):
    return "\n".join(switches.running_lines(name))


def _tenant_lines(switches, name, network):
    """Lines on a device that belong to this network: its VRF or its port descriptions (the
    names carry the network's id, so leftovers of earlier tests never match)."""
    marks = (network.vrf, f"{network.device_name}-")
    return [line for line in switches.running_lines(name) if any(m in line for m in marks)]


def test_attaching_8_nodes_over_4_vendors_configures_and_saves_every_switch(switches, lab):
    _, network, nodes, _ = lab
    eight = [n for n in nodes if not n.name.endswith("-n3")]
    pushes = networks.network_attach(network=network, interfaces=_eth0(eight), actor=SYSTEM)
    assert {p.status for p in pushes} == {NetworkPush.Status.APPLIED} and len(pushes) == 4
    vlan = network.segments.get().vlan.value
    assert f"vxlan vrf {network.vrf} vni {network.l3vni.value}" in _on(switches, "arista1")
    leak = f"ip route vrf {network.vrf} 10.250.0.0/24 egress-vrf storage"
    assert leak in _on(switches, "arista1")  # the storage leak, and no route to other tenants
    assert f"member vni {network.l3vni.value} associate-vrf" in _on(switches, "cisco1")
    assert f"vlan-id {vlan}" in _on(switches, "juniper1")
    assert f"switchport access Vlan {vlan}" in _on(switches, "dell1")
    assert _on(switches, "arista1").count(f"switchport access vlan {vlan}") == 2
    assert all(switches.state(d.name)["saved"] for d in switches)
    assert NetworkAttachment.objects.filter(state="attached").count() == 8


def test_a_new_node_on_a_carrying_switch_adds_only_its_port_and_the_last_one_removes_the_net(
    switches, lab
):
    _, network, nodes, _ = lab
    on_arista = [n for n in nodes if n.name.startswith("arista1")]
    networks.network_attach(network=network, interfaces=_eth0(on_arista[:1]), actor=SYSTEM)
    (push,) = networks.network_attach(
        network=network, interfaces=_eth0(on_arista[1:2]), actor=SYSTEM
    )
    assert push.commands[0] == "interface Ethernet2" and "vrf instance" not in " ".join(
        push.commands
    )
    networks.network_detach(network=network, interfaces=_eth0(on_arista[:1]), actor=SYSTEM)
    assert f"vrf instance {network.vrf}" in _on(switches, "arista1")
    (last,) = networks.network_detach(
        network=network, interfaces=_eth0(on_arista[1:2]), actor=SYSTEM
    )
    assert last.commands[-1] == f"no vrf instance {network.vrf}"
    assert network.vrf not in _on(switches, "arista1")


def test_a_switch_that_refuses_makes_every_switch_undo_and_nothing_is_saved(switches, lab):
    _, network, nodes, _ = lab
    switches.set_reject("cisco1", ["switchport access vlan"])
    startup = {d.name: switches.state(d.name)["startup"] for d in switches}
    with pytest.raises(PushFailed, match="cisco1 refused: % Error"):
        networks.network_attach(network=network, interfaces=_eth0(nodes), actor=SYSTEM)
    for device in switches:  # everything the push applied was undone, and nothing was saved
        assert _tenant_lines(switches, device.name, network) == [], device.name
        assert "switchport trunk allowed" not in _on(switches, device.name)
        assert switches.state(device.name)["startup"] == startup[device.name]
    history = {p.switch.name: p for p in NetworkPush.objects.filter(network=network)}
    assert history["cisco1"].status == "failed" and "% Error" in history["cisco1"].output
    assert {p.status for n, p in history.items() if n != "cisco1"} == {"rolled_back"}
    assert not NetworkAttachment.objects.filter(state="attached").exists()
    # The NICs are free again: the next attach works once the switch accepts.
    switches.set_reject("cisco1", [])
    networks.network_attach(network=network, interfaces=_eth0(nodes[:1]), actor=SYSTEM)


def test_a_switch_that_cannot_be_reached_rolls_the_others_back(switches, lab):
    _, network, nodes, _ = lab
    network.attachments.all().delete()
    from fabric.models import Switch

    Switch.objects.filter(name="juniper1").update(management_port=1)
    with pytest.raises(PushFailed, match="juniper1"):
        networks.network_attach(network=network, interfaces=_eth0(nodes), actor=SYSTEM)
    for device in switches:
        assert _tenant_lines(switches, device.name, network) == [], device.name


def test_another_tenants_node_cannot_be_attached(switches, lab):
    _, network, nodes, _ = lab
    stranger = organization_of(member())
    nodes[0].organization = stranger
    nodes[0].save()
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        networks.network_attach(network=network, interfaces=_eth0(nodes[:1]), actor=SYSTEM)


def test_a_tenant_drives_its_network_through_the_api_and_reads_the_history(client, switches, lab):
    org, network, nodes, _ = lab
    owner = org.memberships.get().user
    client.force_login(owner)
    names = [n.name for n in nodes if n.name.startswith("arista1")][:2]
    url = f"/api/v1/networks/{network.pk}"
    dry = client.post(
        f"{url}/attach/", {"nodes": names, "dry_run": True}, content_type="application/json"
    )
    assert dry.status_code == 200 and dry.json()[0]["status"] == "dry_run"
    assert network.vrf not in _on(switches, "arista1")  # a dry run sends nothing
    done = client.post(f"{url}/attach/", {"nodes": names}, content_type="application/json")
    assert done.status_code == 200 and done.json()[0]["status"] == "applied"
    assert sorted(client.get(f"{url}/").json()["attached"]) == [f"{n}:eth0" for n in names]
    history = client.get(f"{url}/history/").json()
    assert history[0]["switch"] == "arista1" and "switchport access vlan" in history[0]["output"]
    stranger = member()
    client.force_login(stranger)
    assert client.get(f"{url}/").status_code == 404
    assert (
        client.post(f"{url}/detach/", {"nodes": names}, content_type="application/json").status_code
        == 404
    )
    assert network.vrf in _on(switches, "arista1")


def test_a_push_a_switch_refuses_through_the_api_answers_400_saying_nothing_changed(
    client, switches, lab
):
    org, network, nodes, _ = lab
    client.force_login(org.memberships.get().user)
    switches.set_reject("cisco1", ["switchport access vlan"])
    names = [n.name for n in nodes if n.name.startswith("cisco1")][:1]
    answer = client.post(
        f"/api/v1/networks/{network.pk}/attach/", {"nodes": names}, content_type="application/json"
    )
    assert answer.status_code == 400
    (detail,) = answer.json().values()
    assert list(answer.json()) == ["detail"] and isinstance(detail, str)
    assert detail.startswith("Nothing was changed: ") and "cisco1 refused: % Error" in detail
    assert not NetworkAttachment.objects.filter(network=network, state="attached").exists()
    switches.set_reject("cisco1", [])


def test_what_the_switches_show_is_what_the_plan_said(switches, lab):
    from netmiko import ConnectHandler

    from fabric.networks.drivers import driver_for

    _, network, nodes, _ = lab
    on_arista = [n for n in nodes if n.name.startswith("arista1")]
    (push,) = networks.network_attach(network=network, interfaces=_eth0(on_arista), actor=SYSTEM)
    connection = ConnectHandler(**switches["arista1"].netmiko())
    try:
        shown = [
            line.strip() for line in connection.send_command("show running-config").splitlines()
        ]
        # A line the switch's parser cannot take is answered "% Invalid input", which the
        # driver recognises as a refusal (and the push would roll back).
        answer = connection.send_config_set(["vlan 7", "name INVALID-TEST"])
    finally:
        connection.disconnect()
    trunk = f"switchport trunk allowed vlan add {network.segments.get().vlan.value}"
    planned = [c for c in push.commands if c not in ("exit", trunk)]
    assert [c for c in planned if c not in shown] == []
    assert trunk in push.commands  # the jump host's trunk, shown as the port's allowed list
    assert f"switchport trunk allowed vlan {network.segments.get().vlan.value}" in shown
    assert driver_for("arista_eos").failed(answer).startswith("% Invalid input")


def _allowed(switches) -> str | None:
    """The VLANs the services host's trunk port (arista1 Ethernet4) carries."""
    lines = switches.running_lines("arista1")
    at = lines.index("interface Ethernet4") if "interface Ethernet4" in lines else None
    if at is None:
        return None
    found = [line for line in lines[at:] if "switchport trunk allowed vlan" in line]
    return found[0].split()[-1] if found else None


def test_the_first_member_brings_the_jump_hosts_trunk_and_the_last_takes_it_away(switches, lab):
    org, first, nodes, _ = lab
    second = networks.network_create(organization=org, site=first.site, label="b", actor=SYSTEM)
    vlans = [n.segments.get().vlan.value for n in (first, second)]
    on_cisco = [n for n in nodes if n.name.startswith("cisco1")]
    networks.network_attach(network=first, interfaces=_eth0(on_cisco[:1]), actor=SYSTEM)
    first.refresh_from_db()
    assert (first.access_port.switch.name, first.access_port.name) == ("arista1", "Ethernet4")
    assert _allowed(switches) == str(vlans[0])
    assert "switchport mode trunk" in _on(switches, "arista1")
    networks.network_attach(network=first, interfaces=_eth0(on_cisco[1:2]), actor=SYSTEM)
    networks.network_attach(network=second, interfaces=_eth0(on_cisco[2:3]), actor=SYSTEM)
    assert _allowed(switches) == f"{min(vlans)},{max(vlans)}"  # one trunk, both networks
    networks.network_detach(network=first, interfaces=_eth0(on_cisco[:1]), actor=SYSTEM)
    assert _allowed(switches) == f"{min(vlans)},{max(vlans)}"  # a member is left to reach
    networks.network_delete(network=first, actor=SYSTEM)
    assert _allowed(switches) == str(vlans[1])
    assert first.vrf not in _on(switches, "arista1")  # nor its base config, not a port there
    networks.network_delete(network=second, actor=SYSTEM)
    assert _allowed(switches) is None
    assert switches.state("arista1")["saved"]
