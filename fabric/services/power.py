"""Servers' power through their BMCs: register a BMC's access (a password stored encrypted, or
a reference to where it lives), verify it against the inventory, switch a node on (network
boot once) or off, and read its power state. Drivers raise PowerTransient (try again) or
PowerFatal (give up and compensate)."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from fabric import secrets
from fabric.models import Bmc, Drift, Node
from fabric.power.base import BmcAccess, PowerDriver, PowerError, PowerFatal
from fabric.power.credentials import BadReference, reference_check, reference_read
from fabric.power.registry import power_driver
from fabric.services.changes import inventory_save
from portal.services.audit import Actor

NO_SERIAL = "no serial reported"


@transaction.atomic
def bmc_set(
    *,
    node: Node,
    url: str,
    username: str,
    system_id: str = "",
    password: str | None = None,
    password_ref: str = "",
    verify_tls: bool = True,
    driver: str = Bmc.Driver.REDFISH,
    actor: Actor | None = None,
) -> Bmc:
    """Register or change `node`'s BMC. The password is write-only: give `password` (stored
    encrypted) or `password_ref` (`env:`/`file:`, checked now and read at each use), or
    neither to keep the one on record."""
    if password and password_ref:
        raise ValidationError({"password_ref": "Give a password or a reference, not both."})
    bmc = Bmc.objects.select_for_update().filter(node=node).first() or Bmc(node=node)
    if password_ref:
        try:
            reference_check(password_ref)
        except BadReference as exc:
            raise ValidationError({"password_ref": str(exc)}) from None
        bmc.password_encrypted, bmc.password_ref = "", password_ref
    elif password:
        bmc.password_encrypted, bmc.password_ref = secrets.encrypt(password), ""
    elif not (bmc.password_encrypted or bmc.password_ref):
        raise ValidationError({"password": "A new BMC needs a password or a password reference."})
    bmc.driver = driver
    bmc.url = url.rstrip("/")
    bmc.system_id = system_id
    bmc.username = username
    bmc.verify_tls = verify_tls
    created = bmc.pk is None
    inventory_save(obj=bmc, actor=actor or Actor.system())
    if created:  # now sellable as bare metal: capacity caches reload on a node change
        Node.objects.filter(pk=node.pk).update(updated_at=timezone.now())
    return bmc


def bmc_access(*, bmc: Bmc) -> BmcAccess:
    """How to reach `bmc` now: its password decrypted, or its reference read. Raises
    PowerFatal (naming the node, never the secret) when neither can be."""
    try:
        if bmc.password_ref:
            password = reference_read(bmc.password_ref)
        else:
            password = secrets.decrypt(bmc.password_encrypted)
    except (BadReference, secrets.SecretUnreadable) as exc:
        raise PowerFatal(f"{bmc.node.name}: the BMC password: {exc}") from exc
    return BmcAccess(bmc.url, bmc.system_id, bmc.username, password, bmc.verify_tls)


def _driver(node: Node) -> PowerDriver:
    try:
        bmc = Bmc.objects.get(node=node)
    except Bmc.DoesNotExist:
        raise PowerFatal(f"{node.name} has no BMC on record.") from None
    bmc.node = node
    return power_driver(bmc.driver, bmc_access(bmc=bmc))


def node_power_on(*, node: Node, pxe: bool = True) -> None:
    _driver(node).power_on(pxe=pxe)


def node_power_off(*, node: Node) -> None:
    _driver(node).power_off()


def node_power_state(*, node: Node) -> str:
    return _driver(node).power_state()


@dataclass(frozen=True)
class BmcVerification:
    node: str
    reachable: bool
    power_state: str  # "" when the BMC could not be read
    serial_expected: str
    serial_reported: str  # "" when the BMC reports none
    serial_matches: bool | None  # None: nothing to compare
    detail: str


def _serial_drift(node: Node, expected: str, reported: str, now) -> None:
    """Open (or refresh) the mismatch, or resolve it once the serials agree."""
    kind = Drift.Kind.BMC_SERIAL_MISMATCH
    open_rows = Drift.objects.select_for_update().filter(node=node, kind=kind, resolved_at=None)
    if reported.casefold() == expected.casefold():
        open_rows.update(resolved_at=now)
        return
    row = open_rows.first() or Drift(node=node, kind=kind, subject="system serial")
    row.expected, row.observed, row.last_seen = expected[:200], reported[:200], now
    row.save()


def bmc_verify(*, node: Node, actor: Actor) -> BmcVerification:
    """Read the BMC's power state and its system's serial number, compare the serial with the
    inventory's, and record the result on the BMC; a different serial is an open drift finding
    (the node's BMC may be another server's), resolved once a verification finds them equal. A
    BMC that reports no serial, or cannot be reached, changes no finding."""
    if not Bmc.objects.filter(node=node).exists():
        raise ValidationError({"bmc": f"{node.name} has no BMC on record."})
    expected, state, reported, reachable = node.serial, "", "", True
    try:
        driver = _driver(node)
        state = driver.power_state()
        reported = driver.system_serial()
    except PowerError as exc:
        reachable, detail, matches = False, str(exc), None
    else:
        if not reported:
            detail, matches = f"power {state}; {NO_SERIAL}", None
        elif reported.casefold() == expected.casefold():
            detail, matches = f"power {state}; serial {reported} matches the inventory", True
        else:
            detail = f"power {state}; serial {reported} differs from the inventory's {expected}"
            matches = False
    now = timezone.now()
    with transaction.atomic():
        bmc = Bmc.objects.select_for_update().get(node=node)
        bmc.verified_at, bmc.verification = now, detail[:300]
        inventory_save(obj=bmc, actor=actor)
        if reported:
            _serial_drift(node, expected, reported, now)
    return BmcVerification(
        node=node.name,
        reachable=reachable,
        power_state=state,
        serial_expected=expected,
        serial_reported=reported,
        serial_matches=matches,
        detail=detail,
    )
