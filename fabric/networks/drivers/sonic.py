from netmiko.dell.dell_sonic_ssh import DellSonicSSH

from fabric.networks.drivers.base import AccessPorts, SwitchDriver
from fabric.networks.intent import Network


class _SonicConnection(DellSonicSSH):
    """netmiko's SONiC driver waits for two seconds of silence on every config-mode check;
    matching the prompt instead makes a push take one second instead of ten."""

    def check_config_mode(self, check_string=")#", pattern=r"[>#$]\s*$", force_regex=False):
        return super().check_config_mode(check_string=check_string, pattern=pattern)


class EnterpriseSONiC(AccessPorts, SwitchDriver):
    """SONiC (Dell Enterprise SONiC / the sonic-cli): VXLAN with vtep1, VRFs named Vrf*."""

    netmiko_type = "dell_sonic"
    access_vlan = "switchport access Vlan"
    trunk_vlan = "switchport trunk allowed Vlan"
    connection_class = _SonicConnection
    error_patterns = (r"^% Error", r"^% Invalid", r"^% Incomplete", r"^%")

    @staticmethod
    def _vrf(network: Network) -> str:
        return f"Vrf{network.vrf}"  # SONiC requires the Vrf prefix

    def network_add(self, network: Network) -> list[str]:
        vrf = self._vrf(network)
        lines = [
            f"ip vrf {vrf}",
            "exit",
            "interface vxlan vtep1",
            f"map vni {network.l3vni} vrf {vrf}",
            "exit",
        ]
        if network.storage is not None:  # the storage leak: a route into the storage VRF only
            leak = network.storage
            lines.append(
                f"ip route vrf {vrf} {leak.storage_prefix} nexthop-vrf Vrf{leak.storage_vrf}"
            )
        for segment in network.segments:
            lines += [f"interface Vlan{segment.vlan}", f"ip vrf forwarding {vrf}"]
            if segment.gateway is not None:
                lines.append(f"ip anycast-address {segment.gateway}")
            lines += [
                "exit",
                "interface vxlan vtep1",
                f"map vni {segment.l2vni} vlan {segment.vlan}",
                "exit",
            ]
        return lines

    def network_remove(self, network: Network) -> list[str]:
        vrf = self._vrf(network)
        lines = []
        for segment in reversed(network.segments):
            lines += [
                "interface vxlan vtep1",
                f"no map vni {segment.l2vni} vlan {segment.vlan}",
                "exit",
                f"no interface Vlan{segment.vlan}",
            ]
        if network.storage is not None:
            leak = network.storage
            lines.append(
                f"no ip route vrf {vrf} {leak.storage_prefix} nexthop-vrf Vrf{leak.storage_vrf}"
            )
        return [
            *lines,
            "interface vxlan vtep1",
            f"no map vni {network.l3vni} vrf {vrf}",
            "exit",
            f"no ip vrf {vrf}",
        ]
