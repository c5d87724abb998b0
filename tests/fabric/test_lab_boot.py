"""A lab server boots like a machine from the portal: its emulated BMC powers it on (Redfish),
the lab's stand-in for an OS image (fabric/testbed/servers/boot.py) takes a DHCP lease from a
real dnsmasq rendered from the inventory, fetches its iPXE scripts and NoCloud seed from the
portal, creates the orderer's user with their key, starts Debian's sshd with fresh host keys
and phones home; the portal records the host keys, the bare-metal ready check finds SSH
answering with one of them, and the orderer's private key logs in and runs `hostname`.

Where the portal listens: on this machine, on the provisioning server's address of the lab's
host link (LabServers(host_link=...)), served by Django's threaded WSGI server in this test
process (so it shares the test's database and settings), as `make run` serves the servers on
PROVISIONING_SERVER_ADDRESS. The provisioning network is a random 10.99.X.0/24 (X >= 100) and
the link a name of the lab's own prefix, so `make run`'s 10.99.0.0/24 and other tests are left
alone. dnsmasq runs on the host, bound to that link.

Needs root (CI runs as root): without it this test fails, it does not skip."""

import random
import secrets
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import paramiko
import pytest
from django.db import transaction

from catalog.models import Order, OrderNode, OrderState
from catalog.offerings.bare_metal import BareMetal, ssh_host_key_check
from catalog.offerings.base import Advance
from catalog.services.products import product_upsert
from fabric.models import Node, NodeState
from fabric.power.redfish import Redfish
from fabric.provisioning import dnsmasq
from fabric.services.cleaning import node_clean_start
from fabric.services.placement import hand_nodes
from fabric.services.power import bmc_set
from fabric.services.provisioning import provisioning_apply
from fabric.testbed import bmcs
from fabric.testbed.servers import STANDIN_BOOT, LabServers, PowerWatcher, ServerSpec
from portal import embedded
from portal.services.audit import Actor
from portal.services.ssh_keys import ssh_key_add
from tests.fabric.factories import NetworkInterfaceFactory, NodeFactory
from tests.fabric.lab_chain import (
    dnsmasq_running,
    keypair,
    login,
    portal_on,
    require_root_and_tools,
    wait,
)
from tests.portal.factories import member, organization_of

NAME = "lab-boot-1"
SPEC = ServerSpec(NAME, "NVIDIA H100 80GB HBM3", 8)
ACTOR = Actor.system()
BOOT_S = 90  # the emulator's 1-11 s, then DHCP, fetches, ssh-keygen -A and the phone-home


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    running = bmcs.start(
        names=[NAME], port=embedded.free_port(),
        directory=tmp_path_factory.mktemp("boot-bmc"), password=uuid.uuid4().hex,
    )  # fmt: skip
    yield running
    running.stop()


def _order(node, public_key: str) -> OrderNode:
    owner = member()
    ssh_key_add(user=owner, name="laptop", public_key=public_key, actor=ACTOR)
    product = product_upsert(slug="bare-metal", name="Bare metal", kind="bare_metal", summary="-")
    order = Order.objects.create(
        organization=organization_of(owner), created_by=owner, product=product,
        offering="bare_metal", spec={"gpu_model": SPEC.gpu_model, "nodes": 1}, hourly_quote=1,
        state=OrderState.POWERING,
    )  # fmt: skip
    return OrderNode.objects.create(
        order=order, node=node, hostname=NAME, metadata_nonce=secrets.token_hex(16)
    )


@pytest.mark.django_db(transaction=True)
def test_a_powered_on_server_boots_from_the_portal_takes_the_keys_and_answers_ssh(
    settings, emulator, tmp_path
):
    require_root_and_tools()
    prefix = f"sf{secrets.token_hex(3)}"
    network = f"10.99.{random.randint(100, 250)}"
    server_address, host_link = f"{network}.1", f"{prefix}-h"
    access = emulator.access(NAME)
    private, public = keypair(tmp_path, "orderer")
    stranger, _ = keypair(tmp_path, "stranger")

    node = NodeFactory(name=NAME, gpu_model=SPEC.gpu_model)
    nic = NetworkInterfaceFactory(node=node, name="eno1", mac="0e:42:00:00:00:01")
    bmc_set(
        node=node, url=access.url, system_id=access.system_id, username=access.username,
        password=access.password, verify_tls=False,
    )  # fmt: skip
    order_node = _order(node, public)

    # dnsmasq re-reads its hosts file as nobody: a folder it can read, removed afterwards.
    directory = Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir="/tmp"))
    directory.chmod(0o755)
    lab = LabServers(
        [ServerSpec(NAME, SPEC.gpu_model, SPEC.gpus, macs={"eno1": nic.mac})],
        root=tmp_path / "lab", prefix=prefix, provisioning=f"{network}.0/24",
        host_link=host_link,
    )  # fmt: skip
    try:
        with lab:
            listener = socket.create_server((server_address, 0))
            portal = f"http://{server_address}:{listener.getsockname()[1]}"
            settings.PROVISIONING_PREFIX = f"{network}.0/24"
            settings.PROVISIONING_SERVER_ADDRESS = server_address
            settings.PROVISIONING_PORTAL_URL = portal
            settings.PROVISIONING_INTERFACE_NAMES = ["eno1"]
            settings.PROVISIONING_INTERFACE = host_link
            settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, server_address]
            provisioning_apply(actor=ACTOR, directory=directory, interface=host_link)
            reserved = next(
                line.split(",")[2]
                for line in (directory / dnsmasq.HOSTS).read_text().splitlines()
                if line.startswith(nic.mac)
            )
            server = lab[NAME]
            server.boot = list(STANDIN_BOOT)
            log = tmp_path / "dnsmasq.log"
            with (
                portal_on(listener),
                dnsmasq_running(directory, log),
                PowerWatcher(lab, {NAME: access}) as watcher,
            ):
                Redfish(access).power_on(pxe=True)
                wait(
                    lambda: "phone home: 200" in server.console_tail(200),
                    BOOT_S, "the boot to phone home", server.console,
                )  # fmt: skip
                assert watcher.errors == {}
                console = server.console.read_text()

                # DHCP from the real dnsmasq, the iPXE scripts and the seed from the portal.
                assert f"leased {reserved}/24, boot file {portal}/provisioning/ipxe/" in console
                assert f"iPXE: fetched {portal}/provisioning/ipxe/{nic.mac}" in console
                assert f"{nic.mac} {reserved} {NAME}" in (directory / dnsmasq.LEASES).read_text()
                order_node.refresh_from_db()
                assert order_node.metadata_fetched_at and order_node.phoned_home_at

                # Inside: named, the orderer's user with the key, fresh host keys phoned home.
                assert server.run(["hostname"]).stdout.strip() == NAME
                authorized = server.run(["cat", "/home/ubuntu/.ssh/authorized_keys"]).stdout
                assert authorized.split() == public.split()[:2]
                on_disk = server.run(["cat", "/etc/ssh/ssh_host_ed25519_key.pub"]).stdout
                assert order_node.host_keys["ssh-ed25519"] == " ".join(on_disk.split()[:2])
                assert set(order_node.host_keys) >= {"ssh-ed25519", "ecdsa-sha2-nistp256"}

                # SSH answers with the reported key, and with no other.
                assert ssh_host_key_check(reserved, order_node.host_keys) == ""
                forged = {"ssh-ed25519": public}  # a valid key, but not the server's
                assert "did not report" in ssh_host_key_check(reserved, forged)

                # The orderer's key logs in and runs `hostname`; another key is refused.
                assert login(reserved, order_node.host_keys, private) == NAME
                with pytest.raises(paramiko.AuthenticationException):
                    login(reserved, order_node.host_keys, stranger)

                # The bare-metal ready check: phoned home and SSH answering on the address
                # the customer is given (here the provisioning address: this test has no
                # tenant network) -> ready; the handover shows fingerprints and known_hosts.
                settings.ORDER_BOOT_CHECK = "all"
                OrderNode.objects.filter(pk=order_node.pk).update(address=reserved)
                order = Order.objects.get(pk=order_node.order_id)
                Order.objects.filter(pk=order.pk).update(state=OrderState.LAUNCHING)
                step = BareMetal()._ready_check(order, lambda **kwargs: None)
                assert isinstance(step, Advance) and step.to == OrderState.READY, step
                handed = BareMetal().handover(order)["nodes"][0]
                assert handed["state"] == "ready"
                lines = {k["type"]: k for k in handed["host_keys"]}
                ed25519 = lines["ssh-ed25519"]
                assert ed25519["fingerprint"].startswith("SHA256:")
                assert ed25519["known_hosts"] == f"{reserved} {order_node.host_keys['ssh-ed25519']}"
                fingerprint = subprocess.run(
                    ["ssh-keygen", "-l", "-E", "sha256", "-f", "-"],
                    input=on_disk, capture_output=True, text=True, check=True,
                ).stdout.split()[1]  # fmt: skip
                assert ed25519["fingerprint"] == fingerprint

                # Terminate and clean: the server goes back powered off, through cleaning.
                _cleaned_for_the_next_tenant(server, node, access, order, private, tmp_path)
        assert lab.leftovers() == []
    finally:
        lab.teardown()
        shutil.rmtree(directory, ignore_errors=True)


def _cleaned_for_the_next_tenant(server, node, access, order, private, tmp_path):
    """Tenant A leaves files behind; the order ends (power off, the node given back: cleaning);
    the cleaning job boots from the portal, erases the disk and reports; the node is available
    and off. Tenant B's order boots the same server: none of A's files, keys or host keys."""
    server.run(
        ["sh", "-c", "echo a-secret > /home/ubuntu/notes.txt && echo a > /root/a.txt && "
         "echo a > /tmp/a.txt && mkdir -p /var/lib/tenant-a && echo a > /var/lib/tenant-a/db"]
    )  # fmt: skip
    a_host_keys = OrderNode.objects.get(order=order).host_keys
    Order.objects.filter(pk=order.pk).update(state=OrderState.TERMINATED)
    Redfish(access).power_off()  # the teardown's power off
    wait(lambda: not server.powered, 30, "the power off", server.console)
    Node.objects.filter(pk=node.pk).update(state=NodeState.ALLOCATED)
    with transaction.atomic():
        hand_nodes([node], to=None, actor=ACTOR)  # the release
    node.refresh_from_db()
    assert node.state == NodeState.CLEANING
    assert node_clean_start(node=node, actor=ACTOR) is not None  # what the task does
    wait(
        lambda: Node.objects.get(pk=node.pk).state != NodeState.CLEANING,
        BOOT_S, "the cleaning report", server.console,
    )  # fmt: skip
    node.refresh_from_db()
    assert node.state == NodeState.AVAILABLE, server.console_tail(40)
    assert node.events.latest("pk").detail.startswith("cleaned: erased ")
    console = server.console.read_text()
    assert "storefront" not in console and "cleaning: erased" in console
    wait(lambda: not server.powered, 30, "the power off after cleaning", server.console)
    assert [p for p in server.disk.rglob("*") if not p.is_dir()] == []  # a blank disk

    # Tenant B gets the same server.
    private_b, public_b = keypair(tmp_path, "tenant-b")
    order_node_b = _order(node, public_b)
    Redfish(access).power_on(pxe=True)
    wait(
        lambda: server.console.read_text().count("phone home: 200") >= 2,
        BOOT_S, "tenant B's boot to phone home", server.console,
    )  # fmt: skip
    order_node_b.refresh_from_db()
    address = server.run(["ip", "-4", "-o", "addr", "show", "eno1"]).stdout.split()[3]
    address = address.split("/")[0]
    assert not set(order_node_b.host_keys.values()) & set(a_host_keys.values())  # fresh keys
    assert login(address, order_node_b.host_keys, private_b) == NAME
    with pytest.raises(paramiko.AuthenticationException):
        login(address, order_node_b.host_keys, private)  # tenant A's key is gone
    authorized = server.run(["cat", "/home/ubuntu/.ssh/authorized_keys"]).stdout
    assert authorized.split() == public_b.split()[:2]
    for path in ("/home/ubuntu/notes.txt", "/root/a.txt", "/tmp/a.txt", "/var/lib/tenant-a"):
        assert server.run(["test", "-e", path]).returncode == 1, path
    assert "a-secret" not in server.run(["grep", "-rs", "a-secret", "/home", "/root"]).stdout
