from fabric.networks.drivers.base import AccessPorts, SwitchDriver
from fabric.networks.intent import Network


class CiscoNXOS(AccessPorts, SwitchDriver):
    """Cisco NX-OS: VXLAN EVPN with nve1, vn-segment per VLAN, anycast gateway SVIs."""

    netmiko_type = "cisco_nxos"
    error_patterns = (r"^% Invalid", r"^% Incomplete", r"^% Ambiguous", r"^ERROR:", r"^% ")

    def network_add(self, network: Network) -> list[str]:
        lines = [f"vrf context {network.vrf}", f"vni {network.l3vni}"]
        if network.storage is not None:  # the storage leak: a route into the storage VRF only
            leak = network.storage
            lines.append(f"ip route {leak.storage_prefix} Null0 vrf {leak.storage_vrf}")
        lines.append("exit")
        for segment in network.segments:
            lines += [
                f"vlan {segment.vlan}",
                f"name {segment.name}",
                f"vn-segment {segment.l2vni}",
                "exit",
            ]
            if segment.gateway is not None:
                lines += [
                    f"interface Vlan{segment.vlan}",
                    f"vrf member {network.vrf}",
                    f"ip address {segment.gateway}",
                    "fabric forwarding mode anycast-gateway",
                    "no shutdown",
                    "exit",
                ]
            lines += ["interface nve1", f"member vni {segment.l2vni}", "exit"]
        return [*lines, "interface nve1", f"member vni {network.l3vni} associate-vrf", "exit"]

    def network_remove(self, network: Network) -> list[str]:
        lines = ["interface nve1", f"no member vni {network.l3vni} associate-vrf", "exit"]
        for segment in reversed(network.segments):
            lines += ["interface nve1", f"no member vni {segment.l2vni}", "exit"]
            if segment.gateway is not None:
                lines.append(f"no interface Vlan{segment.vlan}")
            lines.append(f"no vlan {segment.vlan}")
        return [*lines, f"no vrf context {network.vrf}"]
