"""The lab's GPU servers: the one place where "a GPU server" lives in the lab. Each is a
network namespace cabled to the provisioning network (and, with ``cable()``, to a lab leaf),
with a disk on this machine and, when its emulated BMC says on, a process tree in its own PID,
mount, UTS and IPC namespaces (``lab``); ``watcher.PowerWatcher`` couples them to the
sushy-tools emulator (``fabric.testbed.bmcs``). docs/lab.md describes the whole lab."""

from fabric.testbed.servers.lab import (
    PROVISIONING_BRIDGE,
    PROVISIONING_NETWORK,
    PROVISIONING_NIC,
    STANDIN_BOOT,
    LabServer,
    LabServerError,
    LabServers,
    ServerSpec,
    nic_mac,
)
from fabric.testbed.servers.watcher import PowerWatcher

__all__ = [
    "PROVISIONING_BRIDGE",
    "PROVISIONING_NETWORK",
    "PROVISIONING_NIC",
    "STANDIN_BOOT",
    "LabServer",
    "LabServerError",
    "LabServers",
    "PowerWatcher",
    "ServerSpec",
    "nic_mac",
]
