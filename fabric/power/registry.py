from __future__ import annotations

from fabric.power.base import BmcAccess, PowerDriver
from fabric.power.redfish import Redfish

DRIVERS: dict[str, type[PowerDriver]] = {"redfish": Redfish}


def power_driver(name: str, access: BmcAccess) -> PowerDriver:
    try:
        return DRIVERS[name](access)
    except KeyError:
        raise LookupError(f"No power driver {name!r}.") from None
