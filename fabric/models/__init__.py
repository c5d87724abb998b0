from fabric.models.agent import Drift, NodeReport
from fabric.models.bmc import Bmc
from fabric.models.cables import Cable, CableEnd
from fabric.models.capacity import (
    Allocation,
    AllocationEvent,
    AllocationState,
    GpuBooking,
    Quota,
    Reservation,
)
from fabric.models.changes import ChangeRecord
from fabric.models.firewall import FirewallPolicy, FirewallRule
from fabric.models.ipam import IPAddress, NumberAllocation, NumberPool, Prefix
from fabric.models.locations import Pod, Rack, Site
from fabric.models.networks import NetworkAttachment, NetworkPush, NetworkSegment, TenantNetwork
from fabric.models.nodes import GPU, NetworkInterface, Node, NodeEvent, NodeState
from fabric.models.switches import Switch, SwitchPort

__all__ = [
    "GPU",
    "Allocation",
    "AllocationEvent",
    "AllocationState",
    "Bmc",
    "Cable",
    "CableEnd",
    "ChangeRecord",
    "Drift",
    "FirewallPolicy",
    "FirewallRule",
    "GpuBooking",
    "IPAddress",
    "NetworkAttachment",
    "NetworkInterface",
    "NetworkPush",
    "NetworkSegment",
    "Node",
    "NodeEvent",
    "NodeReport",
    "NodeState",
    "NumberAllocation",
    "NumberPool",
    "Pod",
    "Prefix",
    "Quota",
    "Rack",
    "Reservation",
    "Site",
    "Switch",
    "SwitchPort",
    "TenantNetwork",
]
