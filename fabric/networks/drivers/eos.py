from fabric.networks.drivers.base import AccessPorts, SwitchDriver
from fabric.networks.intent import Network


class AristaEOS(AccessPorts, SwitchDriver):
    """Arista EOS: EVPN/VXLAN with Vxlan1, a VRF per tenant, an anycast gateway per VLAN."""

    netmiko_type = "arista_eos"
    error_patterns = (r"^% Invalid", r"^% Incomplete", r"^% Ambiguous", r"^% Error", r"^% ")

    def network_add(self, network: Network) -> list[str]:
        vrf = network.vrf
        lines = [f"vrf instance {vrf}", "exit", f"ip routing vrf {vrf}"]
        for segment in network.segments:
            lines += [f"vlan {segment.vlan}", f"name {segment.name}", "exit"]
            if segment.gateway is not None:
                lines += [
                    f"interface Vlan{segment.vlan}",
                    f"vrf {vrf}",
                    f"ip address virtual {segment.gateway}",
                    "exit",
                ]
        if network.storage is not None:  # the storage leak: routes to storage, none elsewhere
            leak = network.storage
            lines.append(f"ip route vrf {vrf} {leak.storage_prefix} egress-vrf {leak.storage_vrf}")
        # One Vxlan1 block for every mapping, so the undo finds each line where it was put.
        lines += ["interface Vxlan1", f"vxlan vrf {vrf} vni {network.l3vni}"]
        lines += [f"vxlan vlan {s.vlan} vni {s.l2vni}" for s in network.segments]
        return [*lines, "exit"]

    def network_remove(self, network: Network) -> list[str]:
        vrf = network.vrf
        lines = ["interface Vxlan1"]
        lines += [f"no vxlan vlan {s.vlan} vni {s.l2vni}" for s in reversed(network.segments)]
        lines += [f"no vxlan vrf {vrf} vni {network.l3vni}", "exit"]
        if network.storage is not None:
            leak = network.storage
            lines.append(
                f"no ip route vrf {vrf} {leak.storage_prefix} egress-vrf {leak.storage_vrf}"
            )
        for segment in reversed(network.segments):
            if segment.gateway is not None:
                lines.append(f"no interface Vlan{segment.vlan}")
            lines.append(f"no vlan {segment.vlan}")
        return [*lines, f"no ip routing vrf {vrf}", f"no vrf instance {vrf}"]
