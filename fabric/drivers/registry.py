"""Which driver speaks to which platform (Switch.platform)."""

from __future__ import annotations

from fabric.drivers.base import SwitchDriver
from fabric.drivers.eos import AristaEOS
from fabric.drivers.junos import JuniperJunos
from fabric.drivers.nxos import CiscoNXOS
from fabric.drivers.sonic import EnterpriseSONiC

DRIVERS: dict[str, type[SwitchDriver]] = {
    "arista_eos": AristaEOS,
    "cisco_nxos": CiscoNXOS,
    "juniper_junos": JuniperJunos,
    "dell_sonic": EnterpriseSONiC,
}


class NoDriver(LookupError):
    pass


def driver_for(platform: str) -> SwitchDriver:
    try:
        return DRIVERS[platform]()
    except KeyError:
        raise NoDriver(f"No driver for platform {platform!r}.") from None
