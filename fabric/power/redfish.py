"""Redfish through the `sushy` client (OpenStack Ironic's)."""

from __future__ import annotations

import sushy
from sushy import exceptions as sx

from fabric.power.base import OFF, ON, PowerDriver, PowerFatal, PowerTransient


class Redfish(PowerDriver):
    def _system(self):
        try:
            root = sushy.Sushy(
                self.access.url,
                auth=sushy.auth.BasicAuth(self.access.username, self.access.password),
                verify=self.access.verify_tls,
                server_side_retries=1,  # our tasks retry, with backoff
                server_side_retries_delay=0.1,
                read_timeout=self.timeout,
                connect_timeout=min(self.timeout, 5),
            )
            return root.get_system(self.access.system_id or None)
        except Exception as exc:
            raise self._error(exc) from exc

    def _error(self, exc: Exception):
        where = f"BMC at {self.access.url}"
        if isinstance(exc, sx.AccessError):
            return PowerFatal(f"{where} refused the credentials.")
        if isinstance(exc, sx.ResourceNotFoundError):
            return PowerFatal(f"{where} has no system {self.access.system_id}.")
        if isinstance(exc, sx.UnknownDefaultError):
            return PowerFatal(f"{where} does not have exactly one system: name its path.")
        refused = sx.BadRequestError | sx.MissingActionError | sx.InvalidParameterValueError
        if isinstance(exc, refused):
            return PowerFatal(f"{where} refused the request: {exc}")
        if isinstance(exc, sx.ConnectionError | sx.ServerSideError):
            return PowerTransient(f"{where} did not answer.")
        return PowerTransient(f"{where} failed: {type(exc).__name__}")

    def power_state(self) -> str:
        system = self._system()
        try:
            system.refresh()
            return str(system.power_state.value).lower()
        except sx.SushyError as exc:
            raise self._error(exc) from exc

    def power_on(self, *, pxe: bool) -> None:
        system = self._system()
        try:
            if pxe:
                system.set_system_boot_options(
                    target=sushy.BootSource.PXE, enabled=sushy.BootSourceOverrideEnabled.ONCE
                )
            # A server already on (a previous tenant's power-off not done yet) is restarted:
            # the network boot only happens on a boot.
            on = str(system.power_state.value).lower() == ON
            system.reset_system(sushy.ResetType.FORCE_RESTART if on else sushy.ResetType.ON)
        except sx.SushyError as exc:
            raise self._error(exc) from exc

    def power_off(self) -> None:
        system = self._system()
        try:
            if str(system.power_state.value).lower() != OFF:
                system.reset_system(sushy.ResetType.FORCE_OFF)
        except sx.SushyError as exc:
            raise self._error(exc) from exc

    def system_serial(self) -> str:
        return str(self._system().serial_number or "").strip()  # read as the system loads
