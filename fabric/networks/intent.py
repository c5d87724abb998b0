"""What a tenant network is, in device-neutral terms, built only from validated values (see
safe.py). Drivers turn an intent into commands; the plan compiler diffs intents."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from fabric.networks import safe


@dataclass(frozen=True)
class Segment:
    """An L2 segment: a VLAN on the access ports, bridged into VXLAN with an L2VNI."""

    name: str
    vlan: int
    l2vni: int
    gateway: ipaddress.IPv4Interface | None = None  # the anycast gateway on the leaves

    def __post_init__(self):
        safe.name(self.name)
        safe.number("vlan", self.vlan)
        safe.number("vni", self.l2vni)
        if self.gateway is not None:
            safe.gateway(self.gateway)


@dataclass(frozen=True)
class Port:
    """A switch port facing one of the tenant's nodes, on one segment; a tagged port is a
    trunk shared by many networks (the services host's), which carries the segment's VLAN
    without giving the port to the network."""

    switch: str
    interface: str
    segment: str
    node: str = ""
    tagged: bool = False

    def __post_init__(self):
        safe.name(self.switch)
        safe.interface(self.interface)
        safe.name(self.segment)
        if self.node:
            safe.name(self.node)


@dataclass(frozen=True)
class StorageLeak:
    """Routes between the tenant VRF and the shared storage network: the tenant reaches the
    storage prefix, storage reaches the tenant's segments, and no tenant reaches another."""

    storage_vrf: str
    storage_prefix: ipaddress.IPv4Network

    def __post_init__(self):
        safe.name(self.storage_vrf)
        safe.network(self.storage_prefix)


@dataclass(frozen=True)
class Network:
    """A tenant network (VPC): a VRF with an L3VNI, its segments, the ports attached, an
    InfiniBand partition, a storage leak and an access prefix."""

    name: str
    vrf: str
    l3vni: int
    segments: tuple[Segment, ...] = ()
    ports: tuple[Port, ...] = ()
    pkey: int | None = None
    ib_guids: tuple[str, ...] = ()
    storage: StorageLeak | None = None
    access_prefix: ipaddress.IPv4Network | None = None
    access: Port | None = None  # the trunk to the services host that runs the jump host
    firewall: tuple[str, ...] = field(default=())  # names of ACLs the leaves apply

    def __post_init__(self):
        safe.name(self.name)
        safe.name(self.vrf)
        safe.number("vni", self.l3vni)
        if self.pkey is not None:
            safe.number("pkey", self.pkey)
        for value in self.ib_guids:
            safe.guid(value)
        if self.access_prefix is not None:
            safe.network(self.access_prefix)
        for value in self.firewall:
            safe.name(value)
        known = {s.name for s in self.segments}
        for port in (*self.ports, *([self.access] if self.access else [])):
            if port.segment not in known:
                raise safe.UnsafeValue(
                    f"port {port.interface} names unknown segment {port.segment}"
                )

    def segment(self, name: str) -> Segment:
        return next(s for s in self.segments if s.name == name)

    def ports_on(self, switch: str) -> tuple[Port, ...]:
        return tuple(p for p in self.ports if p.switch == switch)

    @property
    def switches(self) -> list[str]:
        return sorted({p.switch for p in self.ports})
