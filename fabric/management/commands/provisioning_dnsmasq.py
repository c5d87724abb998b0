"""Run the provisioning network's dnsmasq in the foreground (for `make run` and the lab), inside
a network namespace when `--netns` names one, and keep it in line with the inventory: every
`--interval` seconds the reservations are rendered again, rewritten when they changed, and
dnsmasq re-reads them on SIGHUP (a changed main configuration restarts it). The interface must
exist and carry PROVISIONING_SERVER_ADDRESS; setting that up is the host's (or the lab's) job.
Stops dnsmasq and exits on Ctrl-C / SIGTERM; exits non-zero if dnsmasq dies, so whatever
supervises it sees the failure."""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, close_old_connections

from fabric.provisioning import dnsmasq
from fabric.services.provisioning import provisioning_apply
from portal.services.audit import Actor

logger = logging.getLogger("fabric.provisioning")
READY_TIMEOUT_S = 10
STOP_TIMEOUT_S = 5


def _catches_sighup(pid: int) -> bool:
    """Whether the process has installed its SIGHUP handler (before that, SIGHUP kills it)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGHUP - 1)))
    return False


class Command(BaseCommand):
    help = "Run dnsmasq for the provisioning network, re-rendered from the inventory."

    def add_arguments(self, parser):
        parser.add_argument("--netns", help="network namespace to run dnsmasq in")
        parser.add_argument("--interface", default=None, help="default PROVISIONING_INTERFACE")
        parser.add_argument("--directory", default=None, help="default PROVISIONING_DIR")
        parser.add_argument("--interval", type=float, default=None, help="seconds between syncs")
        parser.add_argument(
            "--once", action="store_true", help="write the files once and exit (no dnsmasq)"
        )

    def handle(self, *args, netns, interface, directory, interval, once, **options):
        directory = dnsmasq.path(Path(directory or settings.PROVISIONING_DIR).resolve())
        interval = interval if interval is not None else settings.PROVISIONING_SYNC_SECONDS
        actor = Actor.system()
        provisioning_apply(actor=actor, directory=directory, interface=interface)
        dnsmasq.ipxe_loaders_copy(directory=directory, source=Path(settings.PROVISIONING_IPXE_DIR))
        if once:
            self.stdout.write(f"provisioning files written to {directory}")
            return
        argv = dnsmasq.dnsmasq_argv(directory=directory, namespace=netns)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        process = self._start(argv)
        self.stdout.write(f"provisioning dnsmasq up (pid {process.pid}, files in {directory})")
        self.stdout.flush()
        try:
            while not stop.wait(interval):
                if process.poll() is not None:
                    raise CommandError(f"dnsmasq exited with status {process.returncode}.")
                close_old_connections()
                try:
                    applied = provisioning_apply(
                        actor=actor, directory=directory, interface=interface, pid=process.pid
                    )
                except DatabaseError as exc:
                    logger.warning("provisioning: inventory unreachable, will retry: %s", exc)
                    continue
                if applied.conf_changed:
                    self._stop(process)
                    process = self._start(argv)
        finally:
            self._stop(process)

    def _start(self, argv: list[str]) -> subprocess.Popen:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not _catches_sighup(process.pid):
            if process.poll() is not None:
                raise CommandError(f"dnsmasq exited with status {process.returncode} at start.")
            if time.monotonic() > deadline:
                self._stop(process)
                raise CommandError(f"dnsmasq did not start within {READY_TIMEOUT_S} s.")
            time.sleep(0.02)
        return process

    @staticmethod
    def _stop(process: subprocess.Popen) -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
