from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


class PowerError(Exception):
    """A BMC failed to do what was asked. The message is safe to show an operator or tenant
    (it never holds a credential)."""


class PowerTransient(PowerError):
    """Worth another try: the BMC did not answer, timed out or was busy."""


class PowerFatal(PowerError):
    """Another try will not help: wrong credentials, no such system, a refused action."""


@dataclass(frozen=True)
class BmcAccess:
    url: str
    system_id: str
    username: str
    password: str
    verify_tls: bool = True

    def __repr__(self) -> str:  # never print the password
        return f"BmcAccess({self.url}{self.system_id}, user={self.username})"


ON, OFF = "on", "off"


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
