"""A bare-metal lab for order tests: servers of a sellable GPU model cabled to the FakeNOS
leaves, each with a BMC on the Redfish emulator, and the bare-metal product; `running_lab`
makes them lab servers that boot from the portal, so an order ends on a server that answers
SSH from the customer laptop."""

import contextlib
import itertools
import uuid
from decimal import Decimal
from pathlib import Path

from billing.models import CreditGrant
from catalog.services.products import product_upsert
from fabric.services.power import bmc_set
from fabric.testbed import bmcs, inventory
from fabric.testbed.servers.site import lab_served
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
    """`nodes` as lab servers that boot from the live stack's portal (site.lab_served)."""
    with lab_served(nodes, env=live_stack.env, root=root) as site:
        yield site
    assert site.leftovers() == []
