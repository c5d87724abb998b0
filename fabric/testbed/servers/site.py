"""A running lab site: what `make run` (manage.py lab_servers) and the delivery tests run so that
a bare-metal order ends on a server that boots and answers SSH from the customer's laptop.

- The servers (`LabServers`) boot the lab's stand-in for an OS image from the portal.
- Their BMCs drive their power (`PowerWatcher`, its BMC records read again at each `sync`).
- The provisioning network's dnsmasq on this machine's host link is rendered from the
  inventory (`provisioning_apply`, as `manage.py provisioning_dnsmasq` does).
- The tenant side follows the inventory as the switches' data plane would (`LabAccess`): a
  server's tenant NIC `eth0` is on the layer 2 of the segment its NIC is attached to (nowhere
  when it is attached to none), and each tenant network with a lab server on it has its
  bastion, whose files are rendered again at each `sync` from the grants
  (settings.ACCESS_BASTION_GRANTS) and which goes when the network does.

The portal must answer the servers on the provisioning server's address: the caller runs it
there (a web server bound to `server_address`). Root only."""

from __future__ import annotations

import contextlib
import logging
import random
import secrets
import shutil
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections, connection
from django.test import override_settings
from django.utils.module_loading import import_string

from fabric.bastion import Bastion, bastion_files_write, bastion_host_key, bastion_of
from fabric.errors import PowerFatal
from fabric.models import Bmc, NetworkAttachment, NetworkInterface, Node, TenantNetwork
from fabric.power.base import BmcAccess
from fabric.provisioning import dnsmasq
from fabric.services.networks import network_bastion_key_set
from fabric.services.power import bmc_access
from fabric.services.provisioning import provisioning_apply
from fabric.testbed.servers.access import LabAccess
from fabric.testbed.servers.lab import (
    PROVISIONING_NIC,
    STANDIN_BOOT,
    LabServerError,
    LabServers,
    ServerSpec,
)
from fabric.testbed.servers.watcher import PowerWatcher
from portal import stack
from portal.embedded import free_port
from portal.services.audit import Actor

logger = logging.getLogger(__name__)
TENANT_NIC = "eth0"
DNSMASQ_READY_S = 20


def server_spec(node: Node) -> ServerSpec:
    """A lab server as the inventory knows the node: its GPUs and the MACs of its provisioning
    and tenant NICs."""
    nics = NetworkInterface.objects.filter(
        node=node, name__in=(PROVISIONING_NIC, TENANT_NIC)
    ).exclude(mac="")
    return ServerSpec(
        node.name,
        gpu_model=node.gpu_model,
        gpus=node.gpus.count(),
        macs={nic.name: nic.mac for nic in nics},
    )


def bmc_accesses(names: Sequence[str]) -> dict[str, BmcAccess]:
    """Each named node's BMC as its record says now; a BMC whose password cannot be read is
    left out (its server stays as it is)."""
    accesses = {}
    for bmc in Bmc.objects.filter(node__name__in=names).select_related("node"):
        try:
            accesses[bmc.node.name] = bmc_access(bmc=bmc)
        except PowerFatal:
            continue
    return accesses


class LabSite:
    def __init__(
        self,
        specs: Sequence[ServerSpec],
        *,
        accesses: Callable[[], Mapping[str, BmcAccess]],
        root: Path,
        prefix: str,
        provisioning: str,
        host_link: str,
        server_address: str | None = None,
        reclaim: bool = False,
    ):
        self.lab = LabServers(
            specs, root=root, prefix=prefix, provisioning=provisioning,
            server_address=server_address, host_link=host_link, reclaim=reclaim,
        )  # fmt: skip
        for server in self.lab:
            server.boot = list(STANDIN_BOOT)
        self.access = LabAccess(self.lab)
        self.files = Path("/run") / f"{self.lab.prefix}-site"  # sshd's StrictModes: no /tmp
        self._accesses = accesses
        self._actor = Actor.system("task")
        self.watcher: PowerWatcher | None = None
        self.dnsmasq: subprocess.Popen | None = None
        self._plugged: dict[str, int | None] = {}  # server -> the segment its eth0 is on
        self._bastions: dict[int, Bastion] = {}
        self.errors: deque[str] = deque(maxlen=100)  # what a background sync could not do
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def dnsmasq_dir(self) -> Path:
        return self.files / "dnsmasq"

    def __enter__(self) -> LabSite:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> LabSite:
        try:
            self.lab.build()
            self.access.build()
            for server in self.lab:  # cabled to the fabric, on no segment until attached
                self.access.cable(server, nic=TENANT_NIC)
            shutil.rmtree(self.files, ignore_errors=True)
            self.dnsmasq_dir.mkdir(mode=0o755, parents=True)  # dnsmasq reads as nobody
            self.files.chmod(0o755)
            provisioning_apply(
                actor=self._actor, directory=self.dnsmasq_dir, interface=self.lab.host_link
            )
            self._dnsmasq_start()
            self.watcher = PowerWatcher(self.lab, self._accesses()).start()
            self.follow()
        except BaseException:
            self.stop()
            raise
        return self

    def _dnsmasq_start(self) -> None:
        log = self.files / "dnsmasq.log"
        with log.open("w") as output:
            self.dnsmasq = subprocess.Popen(
                dnsmasq.dnsmasq_argv(directory=self.dnsmasq_dir), stdout=output, stderr=output
            )
        deadline = time.monotonic() + DNSMASQ_READY_S
        while f"read {self.dnsmasq_dir / dnsmasq.HOSTS}" not in log.read_text(errors="replace"):
            if self.dnsmasq.poll() is not None or time.monotonic() > deadline:
                raise LabServerError(f"dnsmasq did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)

    def sync(self) -> None:
        """Bring DHCP, power and the tenant side in line with the inventory once."""
        applied = provisioning_apply(
            actor=self._actor, directory=self.dnsmasq_dir, interface=self.lab.host_link,
            pid=self.dnsmasq.pid,
        )  # fmt: skip
        if applied.conf_changed:
            self._dnsmasq_stop()
            self._dnsmasq_start()
        self.watcher.retarget(self._accesses())
        self.follow()

    def follow(self) -> None:
        """Plug each server's tenant NIC where the inventory attached it; run, refresh and
        stop the bastions of the networks the lab's servers are on."""
        names = [server.name for server in self.lab]
        attached = {
            name: (segment, network)
            for name, segment, network in NetworkAttachment.objects.filter(
                state=NetworkAttachment.State.ATTACHED,
                interface__node__name__in=names,
                interface__name=TENANT_NIC,
            ).values_list("interface__node__name", "segment_id", "network_id")
        }
        for server in self.lab:
            want = attached.get(server.name, (None, None))[0]
            if self._plugged.get(server.name) != want:
                self.access.plug(server, segment_id=want, nic=TENANT_NIC)
                self._plugged[server.name] = want
        grants = import_string(settings.ACCESS_BASTION_GRANTS)
        wanted = set()
        for network in TenantNetwork.objects.filter(pk__in={n for _, n in attached.values()}):
            bastion = bastion_of(network)
            if bastion is None:
                continue
            wanted.add(network.pk)
            files = self.files / f"bastion-{network.pk}"
            bastion_files_write(bastion=bastion, directory=files, grants=grants(network=network))
            if network.pk not in self._bastions:
                self.access.bastion(bastion, directory=files)
                self._bastions[network.pk] = bastion
            network_bastion_key_set(network=network, host_key=bastion_host_key(files))
        for network_id in set(self._bastions) - wanted:
            self.access.bastion_stop(network_id)
            del self._bastions[network_id]
            shutil.rmtree(self.files / f"bastion-{network_id}", ignore_errors=True)

    def run_in_background(self, interval: float = 0.5) -> LabSite:
        """`sync` every `interval` seconds in a thread until `stop`."""

        def loop():
            try:
                while not self._stop.wait(interval):
                    close_old_connections()
                    try:
                        self.sync()
                    except Exception as exc:  # the lab goes on: said, then retried
                        self.errors.append(str(exc))
                        logger.warning("lab site: sync failed, will retry: %s", exc)
            finally:
                connection.close()

        self._thread = threading.Thread(target=loop, name="lab-site", daemon=True)
        self._thread.start()
        return self

    def _dnsmasq_stop(self) -> None:
        if self.dnsmasq is not None and self.dnsmasq.poll() is None:
            self.dnsmasq.terminate()
            try:
                self.dnsmasq.wait(5)
            except subprocess.TimeoutExpired:
                self.dnsmasq.kill()
                self.dnsmasq.wait()
        self.dnsmasq = None

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        with contextlib.suppress(Exception):
            if self.watcher is not None:
                self.watcher.stop()
        self._dnsmasq_stop()
        self.access.close()
        self.lab.teardown()
        shutil.rmtree(self.files, ignore_errors=True)

    def leftovers(self) -> list[str]:
        return self.lab.leftovers() + ([str(self.files)] if self.files.exists() else [])


@contextlib.contextmanager
def lab_served(nodes: Sequence[Node], *, env: Mapping[str, str], root: Path) -> Iterator[LabSite]:
    """`nodes` as a running lab site on a provisioning network of its own (a random
    10.99.X.0/24, X >= 100, so `make run`'s 10.99.0.0/24 is left alone), with the portal
    answering the servers there: a web server started with `env` (the portal's, on the same
    database) bound to the provisioning address, its log under `root`. The site follows the
    inventory in the background; this process's settings name that network meanwhile (what
    LabSite renders). Yields the site; leaves nothing behind (root only)."""
    prefix = f"sf{secrets.token_hex(3)}"
    network = f"10.99.{random.randint(100, 250)}"  # noqa: S311  (a lab address, not a secret)
    address, port = f"{network}.1", free_port()
    provisioning = {
        "PROVISIONING_PREFIX": f"{network}.0/24",
        "PROVISIONING_SERVER_ADDRESS": address,
        "PROVISIONING_PORTAL_URL": f"http://{address}:{port}",
        "PROVISIONING_INTERFACE": f"{prefix}-h",
    }
    names = [node.name for node in nodes]
    site = LabSite(
        [server_spec(node) for node in nodes], accesses=lambda: bmc_accesses(names), root=root,
        prefix=prefix, provisioning=provisioning["PROVISIONING_PREFIX"],
        host_link=provisioning["PROVISIONING_INTERFACE"],
    )  # fmt: skip
    with override_settings(**provisioning), site, contextlib.ExitStack() as processes:
        stack.web(
            processes, env={**env, **provisioning}, logs=root, host=address, port=port,
            log_name="web-provisioning.log",
        )  # fmt: skip
        site.run_in_background()
        yield site
