"""The FakeNOS switch peers (fabric.testbed.switches) driven by real netmiko over real SSH.

One device per vendor, started once for the module in one background process. Each vendor's
whole scenario runs in one SSH session, all vendors in parallel threads: netmiko's dell_sonic
driver waits 2 s of silence in every check_config_mode, so a SONiC config session alone is ~10 s.
"""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from netmiko import ConnectHandler
from netmiko.exceptions import NetmikoAuthenticationException

from fabric.testbed.switches import SwitchSpec, start_switches

POISON = "INVALID-TEST"
REJECT = "vlan 666"

CASES = {
    "eos1": {
        "platform": "arista_eos",
        "lines": [
            "vlan 100",
            "name tenant-a",
            "vrf instance TENANT-A",
            "interface Ethernet1",
            "switchport access vlan 100",
            "description tenant-a",
        ],
        "no": "no description tenant-a",
        "expect": [
            "vlan 100",
            "   name tenant-a",
            "vrf instance TENANT-A",
            "interface Ethernet1",
            "   switchport access vlan 100",
        ],
        "gone": "description tenant-a",
        "show": "show running-config",
        "error": "% Invalid input detected at '^' marker.",
        "bad": ["interface Ethernet2", f"description {POISON}", "vlan 666"],
    },
    "nxos1": {
        "platform": "cisco_nxos",
        "lines": [
            "vlan 100",
            "vn-segment 10100",
            "vrf context TENANT-A",
            "vni 50001",
            "vrf context TENANT-B",
            "interface Ethernet1/1",
            "switchport access vlan 100",
        ],
        "no": "no vrf context TENANT-B",
        "expect": [
            "vlan 100",
            "  vn-segment 10100",
            "vrf context TENANT-A",
            "  vni 50001",
            "interface Ethernet1/1",
            "  switchport access vlan 100",
        ],
        "gone": "TENANT-B",
        "show": "show running-config",
        "error": "% Invalid input detected at '^' marker.",
        "bad": [f"vlan 101 {POISON}", "vlan 666"],
    },
    "sonic1": {
        "platform": "dell_sonic",
        "lines": [
            "interface Vlan100",
            "ip vrf TENANT-A",
            "interface Ethernet0",
            "switchport access Vlan 100",
            "mtu 9100",
        ],
        "no": "no mtu",
        "expect": [
            "interface Vlan100",
            "ip vrf TENANT-A",
            "interface Ethernet0",
            " switchport access Vlan 100",
        ],
        "gone": "mtu 9100",
        "show": "show running-configuration",
        "error": '% Error: Invalid input detected at "^" marker.',
        "bad": [f"interface {POISON}", "interface vlan 666"],
    },
    "junos1": {
        "platform": "juniper_junos",
        "lines": [
            "set vlans TENANT-A vlan-id 100",
            "set vlans TENANT-A vxlan vni 10100",
            "set routing-instances TENANT-A instance-type vrf",
            "set interfaces xe-0/0/1 unit 0 family ethernet-switching vlan members TENANT-A",
        ],
        "no": "delete vlans TENANT-A vxlan",
        "expect": [
            "set vlans TENANT-A vlan-id 100",
            "set routing-instances TENANT-A instance-type vrf",
            "set interfaces xe-0/0/1 unit 0 family ethernet-switching vlan members TENANT-A",
        ],
        "gone": "vxlan vni 10100",
        "show": "show configuration | display set",
        "error": "syntax error.",
        "bad": [f"set vlans {POISON} vlan-id 7"],
    },
}


@pytest.fixture(scope="module")
def switches(tmp_path_factory):
    specs = [SwitchSpec(name, case["platform"]) for name, case in CASES.items()]
    with start_switches(specs, tmp_path_factory.mktemp("switches")) as running:
        running.set_reject("eos1", [REJECT])
        running.set_reject("nxos1", [REJECT])
        running.set_reject("sonic1", [REJECT])
        yield running


def in_order(expected, lines):
    """Every expected line appears in ``lines``, in this order."""
    it = iter(lines)
    return all(any(line == want for line in it) for want in expected)


def save(conn):
    if conn.device_type == "juniper_junos":
        return conn.commit()
    return conn.save_config()


def scenario(switches, name):
    case = CASES[name]
    dev = switches[name]
    timings = {}
    start = time.monotonic()
    conn = ConnectHandler(**dev.netmiko())
    try:
        out = conn.send_config_set([*case["lines"], case["no"]])
        assert "Invalid" not in out and "error" not in out, out
        save(conn)
        timings["config+save"] = time.monotonic() - start
        shown = conn.send_command(case["show"]).splitlines()
        assert in_order(case["expect"], shown), shown
        assert not any(case["gone"] in line for line in shown), shown
        state = switches.state(name)
        assert state["saved"] and state["running"] == state["startup"]
        assert in_order(case["expect"], switches.running_lines(name))

        # A poisoned line answers the vendor's error text and is not recorded.
        out = conn.send_config_set(case["bad"])
        assert case["error"] in out, out
        if name != "junos1":
            # The reject token makes the device refuse that one line.
            assert "% Error: command refused" in out, out
            assert not any("666" in line for line in switches.running_lines(name))
        assert not any(POISON in line for line in switches.running_lines(name))
        assert not any(POISON in line for line in conn.send_command(case["show"]).splitlines())
        if name == "junos1":
            # Junos refuses at commit time; rollback restores the committed configuration.
            switches.set_reject(name, ["vlan-id 666"])
            conn.send_config_set(["set vlans BAD vlan-id 666"])
            with pytest.raises(ValueError, match="configuration check-out failed"):
                conn.commit()
            conn.send_config_set(["rollback 0"], exit_config_mode=False)
            conn.exit_config_mode()
            assert switches.state(name)["candidate"] == switches.state(name)["running"]
            assert not any("666" in line for line in conn.send_command(case["show"]).splitlines())
    finally:
        conn.disconnect()
    timings["session"] = time.monotonic() - start
    return timings


def test_every_vendor_records_saves_and_refuses(switches):
    with ThreadPoolExecutor(len(CASES)) as pool:
        futures = {name: pool.submit(scenario, switches, name) for name in CASES}
        timings = {name: future.result() for name, future in futures.items()}
    assert set(timings) == set(CASES)


def test_wrong_password_is_refused(switches):
    params = switches["eos1"].netmiko(password="not-the-password", conn_timeout=5)
    with pytest.raises(NetmikoAuthenticationException):
        ConnectHandler(**params)
