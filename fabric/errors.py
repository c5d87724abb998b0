"""The errors fabric raises to its callers (MAAS's PowerConnError/PowerFatalError habit): each
says whether another try may help. Callers catch these, never a driver's or a library's own
exceptions (sushy, netmiko, paramiko); the drivers translate those into these."""

from __future__ import annotations


class PowerError(Exception):
    """A BMC failed to do what was asked. The message is safe to show an operator or tenant
    (it never holds a credential)."""


class PowerTransient(PowerError):
    """Worth another try: the BMC did not answer, timed out or was busy."""


class PowerFatal(PowerError):
    """Another try will not help: wrong credentials, no such system, a refused action."""


class PushFailed(Exception):
    """A switch refused or could not be reached; every switch was rolled back."""
