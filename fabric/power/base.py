from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

# Drivers raise fabric's public power errors; they are named here too for the drivers.
from fabric.choices import PowerState
from fabric.errors import PowerError as PowerError
from fabric.errors import PowerFatal as PowerFatal
from fabric.errors import PowerTransient as PowerTransient


@dataclass(frozen=True)
class BmcAccess:
    url: str
    system_id: str  # "" = the BMC's only system
    username: str
    password: str
    verify_tls: bool = True

    def __repr__(self) -> str:  # never print the password
        return f"BmcAccess({self.url}{self.system_id}, user={self.username})"


ON, OFF = PowerState.ON.value, PowerState.OFF.value


class PowerDriver(ABC):
    def __init__(self, access: BmcAccess, *, timeout: float = 10.0) -> None:
        self.access = access
        self.timeout = timeout

    @abstractmethod
    def power_state(self) -> str:
        """'on', 'off', or the BMC's word for a state in between (lower case)."""

    @abstractmethod
    def power_on(self, *, pxe: bool) -> None:
        """Ask for power on (network boot once, when `pxe`); returns before it is on."""

    @abstractmethod
    def power_off(self) -> None:
        """Ask for a hard power off; returns before it is off."""

    @abstractmethod
    def system_serial(self) -> str:
        """The serial number the BMC reports for its system, "" when it reports none."""
