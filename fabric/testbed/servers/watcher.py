"""The wire between an emulated BMC and its lab server: a thread reads each server's Redfish
power state (``bmcs.power_state``, basic auth) every `interval` seconds and, when it changes,
powers the server on or off. So ``POST .../Actions/ComputerSystem.Reset`` with ``On`` boots the
lab server once the emulator applies it, and ``ForceOff`` pulls its plug. A restart shows as
off, then on (the emulator reports Off at once), so it is a power cycle here too. A state first
seen counts as a change: a server whose BMC already says On boots when watching starts."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping

from fabric.power.base import BmcAccess
from fabric.testbed import bmcs
from fabric.testbed.servers.lab import LabServer

logger = logging.getLogger(__name__)
INTERVAL_S = 0.2


class PowerWatcher:
    """Follows the BMCs of `servers`; `accesses` maps a server's name to its BMC (servers
    without one are left alone). Use as a context manager, or ``start()`` and ``stop()``."""

    def __init__(
        self,
        servers: Iterable[LabServer],
        accesses: Mapping[str, BmcAccess],
        *,
        interval: float = INTERVAL_S,
        read: Callable[[BmcAccess], str] = bmcs.power_state,
    ):
        self.servers = {s.name: s for s in servers}
        self.interval = interval
        self.events: list[tuple[float, str, str]] = []  # (monotonic time, server, new state)
        self.errors: dict[str, str] = {}  # server -> the last failure, until a read succeeds
        self._read = read
        self._accesses = dict(accesses)
        self._seen: dict[str, str] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def retarget(self, accesses: Mapping[str, BmcAccess]) -> None:
        """New BMC accesses (a password rotated, a BMC registered); states seen are kept."""
        with self._lock:
            self._accesses = dict(accesses)

    def __enter__(self) -> PowerWatcher:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> PowerWatcher:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="lab-power", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.poll()
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def poll(self) -> None:
        """One round: read every BMC, act on each change."""
        with self._lock:
            accesses = dict(self._accesses)
        for name, access in accesses.items():
            server = self.servers.get(name)
            if server is None or self._stop.is_set():
                continue
            try:
                state = self._read(access)
            except OSError as exc:
                self._error(name, f"BMC read failed: {exc}")
                continue
            self.errors.pop(name, None)
            if state == self._seen.get(name):
                continue
            self._seen[name] = state
            self.events.append((time.monotonic(), name, state))
            try:
                if state == "on":
                    server.power_on()
                elif state == "off":
                    server.power_off()
            except Exception as exc:  # one server's failure must not stop the others
                self._error(name, f"power {state} failed: {exc}")

    def _error(self, name: str, message: str) -> None:
        if self.errors.get(name) != message:
            logger.warning("lab server %s: %s", name, message)
        self.errors[name] = message
