"""A bare-metal lab for order tests: servers of a sellable GPU model cabled to the FakeNOS
leaves, each with a BMC on the Redfish emulator, and the bare-metal product; `running_lab`
makes them lab servers that boot from the portal, so an order ends on a server that answers
SSH from the customer laptop."""

import contextlib
import itertools
import random
import secrets
import uuid
from decimal import Decimal
from pathlib import Path

from django.test import override_settings

from billing.models import CreditGrant
from catalog.services.products import product_upsert
from fabric.services.power import bmc_set
from fabric.testbed import bmcs, inventory
from fabric.testbed.servers.site import LabSite, bmc_accesses, server_spec
from portal import stack
from portal.services.audit import Actor
from portal.services.ssh_keys import ssh_key_add
from tests.portal.factories import member, organization_of

GPU_MODEL = "NVIDIA L40S"
LAPTOP_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJjC+Qo+TLKbw6xoy5Od0dJ3PmJLxsNkegZ+mEYaboPy"
_pool = itertools.count()


def bare_metal_lab(*, switches, emulator, nodes_per_switch: int = 1, gpu_model: str = GPU_MODEL):
    for device in switches:
        switches.set_reject(device.name, [])
    site, nodes = inventory.build(
        switches=switches, nodes_per_switch=nodes_per_switch, gpu_model=gpu_model,
        site_name=f"lab-{uuid.uuid4().hex[:6]}",
    )  # fmt: skip
    for node in nodes:
        bmc_set(
            node=node, url=emulator.url, system_id=emulator.system_id(f"pool-{next(_pool)}"),
            username=bmcs.USERNAME, password=emulator.password,
        )  # fmt: skip
    product = product_upsert(
        slug="bare-metal", name="Bare-metal GPU servers", kind="bare_metal",
        summary="Whole servers, your OS, your network.",
    )  # fmt: skip
    return site, nodes, product


def customer(credit: str | None = "500"):
    """An owner with a verified address in a fresh organization, with prepaid credit."""
    user = member(verified=True)
    if credit:
        CreditGrant.objects.create(organization=organization_of(user), amount=Decimal(credit))
    return user


def with_key(user, public_key: str = LAPTOP_KEY, name: str = "laptop"):
    """`user` with an SSH key (bare metal is ordered with one), added as the portal adds it."""
    return ssh_key_add(user=user, name=name, public_key=public_key, actor=Actor(user=user))


@contextlib.contextmanager
def running_lab(live_stack, nodes, *, root: Path):
    """`nodes` as a running lab site (fabric/testbed/servers/site.py) on a provisioning network
    of its own, with the live stack's portal answering the servers there (a second web server
    of it, bound to the provisioning address) and the site following the inventory in the
    background. Yields the site; leaves nothing behind."""
    prefix = f"sf{secrets.token_hex(3)}"
    network = f"10.99.{random.randint(100, 250)}"
    address, port = f"{network}.1", stack.free_port()
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
            processes, env={**live_stack.env, **provisioning}, logs=root, host=address,
            port=port, log_name="web-provisioning.log",
        )  # fmt: skip
        site.run_in_background()
        yield site
    assert site.leftovers() == []
