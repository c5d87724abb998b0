"""From a customer laptop outside the fabric to a bare-metal server, through the tenant
network's bastion: two tenants each order a server; their networks are created and attached
on the FakeNOS leaves for real; the lab servers boot from the portal (DHCP, iPXE, the NoCloud
seed with the tenant NIC's address from network-config) and the bastions run Debian's sshd on
the files fabric.bastion renders from the orders. Then, from the laptop namespace with OpenSSH:

- tenant A's line (`ssh -J jump@<A's bastion> ubuntu@<A's server>`) runs `hostname` on A's
  server, trusting only the host keys the server phoned home;
- tenant B's key is refused by A's bastion;
- B's server does not answer at all: not routed from the laptop, not reachable through A's
  bastion (it opens port 22 of A's servers only), not from A's server on the segment.

Needs root (CI runs as root): without it this test fails, it does not skip."""

import random
import secrets
import socket
import subprocess
import uuid

import pytest
from django.conf import settings as django_settings

from catalog.models import Order, OrderNode, OrderState
from catalog.offerings.bare_metal import BareMetal, ssh_host_key_check
from catalog.services.products import product_upsert
from fabric.bastion import bastion_host_key, bastion_of
from fabric.models import NetworkInterface, NodeState
from fabric.power.redfish import Redfish
from fabric.services.networks import network_attach, network_create, network_delete
from fabric.services.power import bmc_set
from fabric.testbed import bmcs, inventory
from fabric.testbed.servers import ServerSpec
from fabric.testbed.servers.site import LabSite
from portal import embedded
from portal.services.audit import Actor
from portal.services.ssh_keys import ssh_key_add
from tests.fabric.lab_chain import (
    keypair,
    portal_on,
    require_root_and_tools,
    ssh_config,
    wait,
)
from tests.portal.factories import member, organization_of

ACTOR = Actor.system()
BOOT_S = 90
GPU_MODEL = "NVIDIA H100 80GB HBM3"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    running = bmcs.start(
        names=["access-a", "access-b"], port=embedded.free_port(),
        directory=tmp_path_factory.mktemp("access-bmc"), password=uuid.uuid4().hex,
    )  # fmt: skip
    yield running
    running.stop()


def _tenant(node, public_key: str, product) -> OrderNode:
    """An organization holding `node`, its network created and the node's eth0 attached on
    the leaves, and a live bare-metal order whose orderer has `public_key`."""
    owner = member()
    organization = organization_of(owner)
    ssh_key_add(user=owner, name="laptop", public_key=public_key, actor=ACTOR)
    node.organization, node.state = organization, NodeState.ALLOCATED
    node.save(update_fields=["organization", "state"])
    network = network_create(
        organization=organization, site=node.site, label="servers", actor=ACTOR
    )
    network_attach(
        network=network, interfaces=[NetworkInterface.objects.get(node=node, name="eth0")],
        actor=ACTOR,
    )  # fmt: skip
    attachment = network.attachments.get(state="attached")
    order = Order.objects.create(
        organization=organization, created_by=owner, product=product, offering="bare_metal",
        spec={"gpu_model": GPU_MODEL, "nodes": 1}, hourly_quote=1, state=OrderState.POWERING,
        network=network,
    )  # fmt: skip
    return OrderNode.objects.create(
        order=order, node=node, hostname=node.name, metadata_nonce=secrets.token_hex(16),
        address=str(attachment.address).split("/")[0],
    )  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_a_customer_laptop_reaches_its_server_through_its_bastion_and_nothing_else(
    settings, switches, emulator, tmp_path
):
    require_root_and_tools()
    prefix = f"sf{secrets.token_hex(3)}"
    network = f"10.99.{random.randint(100, 250)}"
    server_address, host_link = f"{network}.1", f"{prefix}-h"
    for device in switches:
        switches.set_reject(device.name, [])
    _, nodes = inventory.build(
        switches=switches, nodes_per_switch=1, gpu_model=GPU_MODEL,
        site_name=f"access-{uuid.uuid4().hex[:6]}",
    )  # fmt: skip
    product = product_upsert(slug="bare-metal", name="Bare metal", kind="bare_metal", summary="-")
    keys = {t: keypair(tmp_path, f"tenant-{t}") for t in "ab"}
    tenants = {}
    for t, node, system in zip("ab", nodes, ("access-a", "access-b"), strict=False):
        access = emulator.access(system)
        bmc_set(
            node=node, url=access.url, system_id=access.system_id, username=access.username,
            password=access.password, verify_tls=False,
        )  # fmt: skip
        eno1 = node.interfaces.get(name="eno1")  # the lab's servers boot from it
        tenants[t] = (_tenant(node, keys[t][1], product), access, eno1)
    a_node, b_node = tenants["a"][0], tenants["b"][0]
    assert a_node.order.network.segments.get().prefix != b_node.order.network.segments.get().prefix

    specs = [
        ServerSpec(
            on.node.name,
            GPU_MODEL,
            8,
            macs={"eno1": eno1.mac, "eth0": on.node.interfaces.get(name="eth0").mac},
        )
        for on, _, eno1 in tenants.values()
    ]
    port = embedded.free_port()
    settings.PROVISIONING_PREFIX = f"{network}.0/24"
    settings.PROVISIONING_SERVER_ADDRESS = server_address
    settings.PROVISIONING_PORTAL_URL = f"http://{server_address}:{port}"
    settings.PROVISIONING_INTERFACE_NAMES = ["eno1"]
    settings.PROVISIONING_INTERFACE = host_link
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, server_address]
    site = LabSite(
        specs, accesses=lambda: {on.node.name: a for on, a, _ in tenants.values()},
        root=tmp_path / "lab", prefix=prefix, provisioning=f"{network}.0/24", host_link=host_link,
    )  # fmt: skip
    try:
        with site, portal_on(socket.create_server((server_address, port))):
            lab, known_hosts, lines = site.lab, tmp_path / "known_hosts", []
            for on, access, _ in tenants.values():  # each network's bastion is up
                network_id = on.order.network_id
                files = site.files / f"bastion-{network_id}"
                lines.append(f"{bastion_of(on.order.network).public.ip} {bastion_host_key(files)}")
                on.order.network.refresh_from_db()  # the site said which key its bastion has
                assert on.order.network.bastion_host_key == bastion_host_key(files)
                Redfish(access).power_on(pxe=True)
            assert site.access.bastions == sorted(
                on.order.network_id for on, _, _ in tenants.values()
            )
            for on, _, _ in tenants.values():
                server = lab[on.node.name]
                wait(
                    lambda s=server: "phone home: 200" in s.console_tail(200),
                    BOOT_S, f"{server.name} to phone home", server.console,
                )  # fmt: skip
                on.refresh_from_db()
                lines += [f"{on.address} {key}" for key in on.host_keys.values()]
                # network-config gave the tenant NIC its address on the segment
                assert f"network: eth0 {on.address}/" in server.console.read_text()
                # The ready check reaches it the customer's way, with the portal's probe key.
                bastion = bastion_of(on.order.network)
                assert ssh_host_key_check(on.address, on.host_keys, bastion=bastion) == ""
                forged = {"ssh-ed25519": keys["a"][1]}
                assert "did not report" in ssh_host_key_check(on.address, forged, bastion=bastion)
            assert site.watcher.errors == {}
            known_hosts.write_text("\n".join(lines) + "\n")
            _from_the_laptop(site.access, tenants, keys, known_hosts, tmp_path, lab)

            # B's network deleted: its bastion goes, B's server is off the segment.
            b_node = tenants["b"][0]
            b_bastion = bastion_of(b_node.order.network)
            b_segment = b_node.order.network.segments.get().pk
            network_delete(network=b_node.order.network, actor=ACTOR)
            site.sync()
            assert site.access.bastions == [tenants["a"][0].order.network_id]
            fabric = site.access.fabric_ns
            bridged = subprocess.run(
                ["ip", "-n", fabric, "-o", "link", "show", "master", f"s{b_segment}"],
                capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
            assert bridged.strip() == ""  # B's server's port is on no segment any more
            b_config = ssh_config(tmp_path / "b.config", keys["b"][0], known_hosts)
            done = site.access.laptop(
                ["ssh", "-F", str(b_config), "-o", "ConnectTimeout=2", f"{b_bastion.jump}", "true"]
            )
            assert done.returncode == 255, done
        assert site.leftovers() == []
    finally:
        site.stop()


def _logs(access_lab) -> str:
    return "".join(f"\n{log}:\n{log.read_text()[-3000:]}" for log in access_lab.logs.values())


def _from_the_laptop(access_lab, tenants, keys, known_hosts, tmp_path, lab):
    a_node, b_node = tenants["a"][0], tenants["b"][0]
    a_config = ssh_config(tmp_path / "a.config", keys["a"][0], known_hosts)
    b_config = ssh_config(tmp_path / "b.config", keys["b"][0], known_hosts)

    # The line the portal gives tenant A, pasted on the laptop, runs `hostname` on A's server.
    line = BareMetal().handover(a_node.order)["nodes"][0]["ssh"]
    a_jump = f"{django_settings.ACCESS_BASTION_USER}@{bastion_of(a_node.order.network).public.ip}"
    assert line == f"ssh -J {a_jump} ubuntu@{a_node.address}"
    ssh = ["ssh", "-F", str(a_config), *line.split()[1:], "hostname"]
    done = access_lab.laptop(ssh)
    assert done.returncode == 0, done.stderr + _logs(access_lab)
    assert done.stdout.strip() == a_node.node.name

    # Tenant B's key is refused by A's bastion.
    done = access_lab.laptop(["ssh", "-F", str(b_config), *line.split()[1:], "hostname"])
    refused = "Permission denied (publickey)"
    assert done.returncode == 255 and refused in done.stderr, done.stderr + _logs(access_lab)

    # B's own line works for B (and only B's server answers it).
    b_line = BareMetal().handover(b_node.order)["nodes"][0]["ssh"]
    done = access_lab.laptop(["ssh", "-F", str(b_config), *b_line.split()[1:], "hostname"])
    assert done.returncode == 0, done.stderr + _logs(access_lab)
    assert done.stdout.strip() == b_node.node.name

    # B's server does not answer A at all: through A's bastion the channel is refused, the
    # laptop has no route to any server address, and A's server has no path to B's.
    done = access_lab.laptop(
        ["ssh", "-F", str(a_config), "-J", a_jump, f"ubuntu@{b_node.address}", "hostname"]
    )
    assert done.returncode == 255 and "stdio forwarding failed" in done.stderr, done.stderr
    denied = f"connect to host {b_node.address} port 22, but the request was denied"
    assert denied in access_lab.logs[a_node.order.network_id].read_text()
    for address in (a_node.address, b_node.address):
        done = access_lab.laptop(["ping", "-c", "1", "-W", "1", address])
        assert done.returncode != 0, f"{address} answered the laptop"
    a_server = lab[a_node.node.name]
    assert a_server.run(["ping", "-c", "1", "-W", "1", b_node.address]).returncode != 0
    # ... while A's own bastion is on A's segment (the path the jump takes).
    bastion_a = bastion_of(a_node.order.network)
    assert a_server.run(["ping", "-c", "1", "-W", "2", str(bastion_a.tenant.ip)]).returncode == 0
