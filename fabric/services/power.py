"""Servers' power through their BMCs: store a BMC's access (password encrypted), switch a node
on (network boot once) or off, and read its power state. Drivers raise PowerTransient (try
again) or PowerFatal (give up and compensate)."""

from __future__ import annotations

from django.db import transaction

from fabric import secrets
from fabric.models import Bmc, Node
from fabric.power.base import BmcAccess, PowerDriver, PowerFatal
from fabric.power.registry import power_driver


@transaction.atomic
def bmc_set(
    *,
    node: Node,
    url: str,
    system_id: str,
    username: str,
    password: str,
    verify_tls: bool = True,
    driver: str = Bmc.Driver.REDFISH,
) -> Bmc:
    bmc, _ = Bmc.objects.update_or_create(
        node=node,
        defaults={
            "driver": driver, "url": url.rstrip("/"), "system_id": system_id,
            "username": username, "password_encrypted": secrets.encrypt(password),
            "verify_tls": verify_tls,
        },
    )  # fmt: skip
    return bmc


def _driver(node: Node) -> PowerDriver:
    try:
        bmc = Bmc.objects.get(node=node)
    except Bmc.DoesNotExist:
        raise PowerFatal(f"{node.name} has no BMC on record.") from None
    try:
        password = secrets.decrypt(bmc.password_encrypted)
    except secrets.SecretUnreadable as exc:
        raise PowerFatal(f"{node.name}: {exc}") from exc
    access = BmcAccess(bmc.url, bmc.system_id, bmc.username, password, bmc.verify_tls)
    return power_driver(bmc.driver, access)


def node_power_on(*, node: Node, pxe: bool = True) -> None:
    _driver(node).power_on(pxe=pxe)


def node_power_off(*, node: Node) -> None:
    _driver(node).power_off()


def node_power_state(*, node: Node) -> str:
    return _driver(node).power_state()
