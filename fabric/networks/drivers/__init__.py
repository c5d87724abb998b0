"""Switch drivers, one module per vendor, chosen by the switch's platform (like Django's
EMAIL_BACKEND): each renders the same intent into its own commands and knows its error
patterns, its save command and how to undo what it applied."""

from fabric.networks.drivers.base import SwitchDriver
from fabric.networks.drivers.registry import driver_for

__all__ = ["SwitchDriver", "driver_for"]
