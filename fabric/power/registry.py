"""Which power driver speaks a BMC's protocol (Bmc.driver): settings.POWER_DRIVERS names the
class of each, so a new protocol is a module plus a line of settings."""

from __future__ import annotations

from fabric.power.base import BmcAccess, PowerDriver
from portal.backends import backend_class


def power_driver(name: str, access: BmcAccess) -> PowerDriver:
    driver = backend_class("POWER_DRIVERS", name, PowerDriver)
    if driver is None:
        raise LookupError(f"No power driver {name!r} in settings.POWER_DRIVERS.")
    return driver(access)
