"""Which driver speaks to which platform (Switch.platform): settings.SWITCH_DRIVERS names the
class of each, so a new vendor is a module plus a line of settings."""

from __future__ import annotations

from fabric.networks.drivers.base import SwitchDriver
from portal.backends import backend_class


class NoDriver(LookupError):
    pass


def driver_for(platform: str) -> SwitchDriver:
    driver = backend_class("SWITCH_DRIVERS", platform, SwitchDriver)
    if driver is None:
        raise NoDriver(f"No driver for platform {platform!r} in settings.SWITCH_DRIVERS.")
    return driver()
