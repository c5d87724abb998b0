from fabric.drivers.base import SwitchDriver
from fabric.networks.intent import Network, Port, Segment


class AristaEOS(SwitchDriver):
    """Arista EOS: EVPN/VXLAN with Vxlan1, a VRF per tenant, an anycast gateway per VLAN."""

    netmiko_type = "arista_eos"
    error_patterns = (r"^% Invalid", r"^% Incomplete", r"^% Ambiguous", r"^% Error", r"^% ")

    def network_add(self, network: Network) -> list[str]:
        lines = [
            f"vrf instance {network.vrf}",
            f"ip routing vrf {network.vrf}",
            "interface Vxlan1",
            f"vxlan vrf {network.vrf} vni {network.l3vni}",
        ]
        for segment in network.segments:
            lines += [f"vlan {segment.vlan}", f"name {segment.name}"]
            lines += ["interface Vxlan1", f"vxlan vlan {segment.vlan} vni {segment.l2vni}"]
            if segment.gateway is not None:
                lines += [
                    f"interface Vlan{segment.vlan}",
                    f"vrf {network.vrf}",
                    f"ip address virtual {segment.gateway}",
                ]
        return lines

    def network_remove(self, network: Network) -> list[str]:
        lines = []
        for segment in reversed(network.segments):
            if segment.gateway is not None:
                lines.append(f"no interface Vlan{segment.vlan}")
            lines += ["interface Vxlan1", f"no vxlan vlan {segment.vlan} vni {segment.l2vni}"]
            lines.append(f"no vlan {segment.vlan}")
        lines += [
            "interface Vxlan1",
            f"no vxlan vrf {network.vrf} vni {network.l3vni}",
            f"no ip routing vrf {network.vrf}",
            f"no vrf instance {network.vrf}",
        ]
        return lines

    def port_add(self, network: Network, segment: Segment, port: Port) -> list[str]:
        lines = [f"interface {port.interface}"]
        if port.node:
            lines.append(f"description {network.name}-{port.node}")
        return [*lines, f"switchport access vlan {segment.vlan}", "no shutdown"]

    def port_remove(self, network: Network, segment: Segment, port: Port) -> list[str]:
        return [
            f"interface {port.interface}",
            "no description",
            f"no switchport access vlan {segment.vlan}",
            "shutdown",
        ]
