from fabric.networks.drivers.base import SwitchDriver
from fabric.networks.intent import Network, Port, Segment


class JuniperJunos(SwitchDriver):
    """Juniper Junos: set/delete statements in a candidate configuration, then commit."""

    netmiko_type = "juniper_junos"
    error_patterns = (r"syntax error", r"^error:", r"unknown command", r"invalid value")

    def network_add(self, network: Network) -> list[str]:
        vrf = network.vrf
        lines = [
            f"set routing-instances {vrf} instance-type vrf",
            f"set routing-instances {vrf} protocols evpn ip-prefix-routes vni {network.l3vni}",
        ]
        if network.storage is not None:  # the storage leak: a route into the storage table only
            leak = network.storage
            lines.append(
                f"set routing-instances {vrf} routing-options static route "
                f"{leak.storage_prefix} next-table {leak.storage_vrf}.inet.0"
            )
        for segment in network.segments:
            lines += [
                f"set vlans {segment.name} vlan-id {segment.vlan}",
                f"set vlans {segment.name} vxlan vni {segment.l2vni}",
            ]
            if segment.gateway is not None:
                lines += [
                    f"set vlans {segment.name} l3-interface irb.{segment.vlan}",
                    f"set interfaces irb unit {segment.vlan} family inet address {segment.gateway}",
                    f"set routing-instances {vrf} interface irb.{segment.vlan}",
                ]
        return lines

    def network_remove(self, network: Network) -> list[str]:
        lines = []
        for segment in reversed(network.segments):
            if segment.gateway is not None:
                lines.append(f"delete interfaces irb unit {segment.vlan}")
            lines.append(f"delete vlans {segment.name}")
        return [*lines, f"delete routing-instances {network.vrf}"]

    def port_add(self, network: Network, segment: Segment, port: Port) -> list[str]:
        base = f"set interfaces {port.interface}"
        members = f"{base} unit 0 family ethernet-switching vlan members {segment.name}"
        if port.tagged:  # a shared trunk: one more VLAN member
            return [f"{base} unit 0 family ethernet-switching interface-mode trunk", members]
        if port.node:
            return [f"{base} description {network.name}-{port.node}", members]
        return [members]

    def port_remove(self, network: Network, segment: Segment, port: Port) -> list[str]:
        if port.tagged:
            return [
                f"delete interfaces {port.interface} unit 0 family ethernet-switching "
                f"vlan members {segment.name}"
            ]
        return [f"delete interfaces {port.interface}"]

    def save(self, connection) -> str:
        return connection.commit()
