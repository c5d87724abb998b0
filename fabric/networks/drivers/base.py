"""The driver contract. A plan is a list of steps; each step renders to forward commands and,
for the undo, inverse commands. Everything rendered comes from a validated intent."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass

from fabric.networks.intent import Network, Port, Segment


@dataclass(frozen=True)
class Step:
    """One unit of change on one switch: add or remove the network's base config (VRF,
    VLANs, VNIs, gateways) or one port."""

    op: str  # network_add | network_remove | port_add | port_remove
    network: Network
    port: Port | None = None

    def inverse(self) -> Step:
        flipped = {
            "network_add": "network_remove",
            "network_remove": "network_add",
            "port_add": "port_remove",
            "port_remove": "port_add",
        }
        return Step(flipped[self.op], self.network, self.port)


class SwitchDriver(ABC):
    """Renders steps for one vendor's CLI and recognises its errors."""

    netmiko_type: str = ""
    connection_class: type | None = None  # a netmiko class to use instead of ConnectHandler's
    error_patterns: tuple[str, ...] = ()
    config_mode: bool = True  # False: commands are sent one by one outside config mode

    def render(self, step: Step) -> list[str]:
        if step.op == "network_add":
            return self.network_add(step.network)
        if step.op == "network_remove":
            return self.network_remove(step.network)
        segment = step.network.segment(step.port.segment)
        if step.op == "port_add":
            return self.port_add(step.network, segment, step.port)
        return self.port_remove(step.network, segment, step.port)

    def render_all(self, steps: list[Step]) -> list[str]:
        return [line for step in steps for line in self.render(step)]

    def failed(self, output: str) -> str | None:
        """The first line of `output` that matches an error pattern, if any."""
        for line in output.splitlines():
            if any(re.search(pattern, line) for pattern in self.error_patterns):
                return line.strip()
        return None

    @abstractmethod
    def network_add(self, network: Network) -> list[str]: ...

    @abstractmethod
    def network_remove(self, network: Network) -> list[str]: ...

    @abstractmethod
    def port_add(self, network: Network, segment: Segment, port: Port) -> list[str]: ...

    @abstractmethod
    def port_remove(self, network: Network, segment: Segment, port: Port) -> list[str]: ...

    def save(self, connection) -> str:
        """Persist the running configuration (after the whole push succeeded)."""
        return connection.save_config()

    def send(self, connection, commands: list[str]) -> str:
        if self.config_mode:
            return connection.send_config_set(commands)
        return "\n".join(connection.send_command(line) for line in commands)


class AccessPorts:
    """Access ports the Cisco-like way (EOS, NX-OS, SONiC): the VLAN keyword differs only."""

    access_vlan = "switchport access vlan"
    trunk_vlan = "switchport trunk allowed vlan"

    def port_add(self, network: Network, segment: Segment, port: Port) -> list[str]:
        if port.tagged:  # a shared trunk: add the VLAN, leave the port's other VLANs alone
            return [
                f"interface {port.interface}",
                "switchport mode trunk",
                f"{self.trunk_vlan} add {segment.vlan}",
                "no shutdown",
                "exit",
            ]
        lines = [f"interface {port.interface}"]
        if port.node:
            lines.append(f"description {network.name}-{port.node}")
        return [*lines, f"{self.access_vlan} {segment.vlan}", "no shutdown", "exit"]

    def port_remove(self, network: Network, segment: Segment, port: Port) -> list[str]:
        if port.tagged:
            return [
                f"interface {port.interface}",
                f"{self.trunk_vlan} remove {segment.vlan}",
                "exit",
            ]
        return [
            f"interface {port.interface}",
            "no description",
            f"no {self.access_vlan} {segment.vlan}",
            "shutdown",
            "exit",
        ]
