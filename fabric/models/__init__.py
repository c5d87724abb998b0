from fabric.models.agent import Drift, NodeReport
from fabric.models.cables import Cable, CableEnd
from fabric.models.changes import ChangeRecord
from fabric.models.firewall import FirewallPolicy, FirewallRule
from fabric.models.ipam import IPAddress, NumberAllocation, NumberPool, Prefix
from fabric.models.locations import Pod, Rack, Site
from fabric.models.nodes import GPU, NetworkInterface, Node, NodeEvent, NodeState
from fabric.models.switches import Switch, SwitchPort

__all__ = [
    "GPU",
    "Cable",
    "CableEnd",
    "ChangeRecord",
    "Drift",
    "FirewallPolicy",
    "FirewallRule",
    "IPAddress",
    "NetworkInterface",
    "Node",
    "NodeEvent",
    "NodeReport",
    "NodeState",
    "NumberAllocation",
    "NumberPool",
    "Pod",
    "Prefix",
    "Rack",
    "Site",
    "Switch",
    "SwitchPort",
]
