"""The portal's side of the node agent: tokens, and turning a report into drift rows.

A token is `sfn_<node id>_<secret>`, shown once and stored as a SHA-256 digest: the id finds the
node, a constant-time compare checks the rest. A report is compared with the inventory; each
difference is an open Drift row, refreshed while it is seen and resolved once it is not."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from fabric.models import Drift, Node, NodeReport
from fabric.models.nodes import GUID_REGEX, MAC_REGEX
from fabric.services.changes import change_records_bulk, snapshot
from portal.services.audit import Actor

TOKEN_PREFIX = "sfn"  # noqa: S105  (a public marker, not a secret)
REPORTS_KEPT = 10
MAX_GPUS, MAX_NICS = 64, 512
GPU_KINDS = {Drift.Kind.GPU_MISSING, Drift.Kind.GPU_UNKNOWN, Drift.Kind.GPU_SERIAL_MISMATCH}
K = Drift.Kind


def _digest(plain: str) -> str:
    return hashlib.sha256(plain.encode()).hexdigest()


@transaction.atomic
def node_agent_token_issue(*, node: Node, actor: Actor) -> str:
    """A new agent token for `node`, replacing any earlier one; the plain token is returned
    once and never stored."""
    node = Node.objects.select_for_update().get(pk=node.pk)
    # The change log keeps no digest, only that a token was issued and whether one was replaced.
    before = {**snapshot(node), "agent_token": "replaced" if node.agent_token_digest else "none"}
    plain = f"{TOKEN_PREFIX}_{node.pk}_{secrets.token_urlsafe(32)}"
    node.agent_token_digest = _digest(plain)
    node.save(update_fields=["agent_token_digest", "updated_at"])
    change_records_bulk(actor=actor, updated=[(before, node)])
    return plain


def node_authenticate_agent(plain: str) -> Node | None:
    """The node whose agent token is `plain`, or None."""
    parts = plain.split("_", 2)  # the secret itself may contain "_"
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not parts[1].isdigit():
        return None
    node = Node.objects.filter(pk=int(parts[1])).exclude(agent_token_digest="").first()
    if node is None or not hmac.compare_digest(node.agent_token_digest, _digest(plain)):
        return None
    return node


# --- the report's shape -----------------------------------------------------------------------


def _field(
    errors: dict[str, str],
    item: dict[str, Any],
    key: str,
    where: str,
    kinds: tuple[type, ...],
    regex: str | None = None,
) -> Any:
    """item[key] if it has one of `kinds` (and matches `regex`), else None and an error."""
    value = item.get(key)
    if not isinstance(value, kinds):
        names = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
        errors[f"{where}{key}"] = f"Expected {names}, got {type(value).__name__}."
        return None
    if regex and isinstance(value, str) and not re.fullmatch(regex, value.lower()):
        errors[f"{where}{key}"] = f"{value!r} is not in the expected format."
        return None
    return value.lower() if isinstance(value, str) and regex else value


def _validate(payload: Any) -> dict[str, Any]:
    """The parts of a report that drift detection reads, normalised; a ValidationError names
    each bad field (`gpus[2].uuid`)."""
    if not isinstance(payload, dict):
        raise ValidationError({"report": "The report must be a JSON object."})
    errors: dict[str, str] = {}
    nvml = payload.get("nvml")
    if not isinstance(nvml, dict) or not isinstance(nvml.get("available"), bool):
        errors["nvml.available"] = "Expected an object `nvml` with a boolean `available`."
    for key, limit in (("gpus", MAX_GPUS), ("nics", MAX_NICS)):
        items = payload.get(key)
        if not isinstance(items, list) or len(items) > limit:
            errors[key] = f"Expected a list of at most {limit} objects."
    if errors:
        raise ValidationError(errors)

    gpus, nics = [], []
    for i, gpu in enumerate(payload["gpus"]):
        if not isinstance(gpu, dict):
            errors[f"gpus[{i}]"] = "Expected an object."
            continue
        uuid = _field(errors, gpu, "uuid", f"gpus[{i}].", (str, type(None)))
        serial = _field(errors, gpu, "serial", f"gpus[{i}].", (str, type(None)))
        gpus.append({"uuid": uuid, "serial": serial})
    for i, nic in enumerate(payload["nics"]):
        if not isinstance(nic, dict):
            errors[f"nics[{i}]"] = "Expected an object."
            continue
        where = f"nics[{i}]."
        nics.append(
            {
                "name": _field(errors, nic, "name", where, (str,)),
                "mac": _field(errors, nic, "mac", where, (str, type(None)), MAC_REGEX),
                "ib_guid": _field(errors, nic, "ib_guid", where, (str, type(None)), GUID_REGEX),
                "virtual": bool(nic.get("virtual", False)),
            }
        )
    if errors:
        raise ValidationError(errors)
    return {"nvml_available": nvml["available"], "gpus": gpus, "nics": nics}


# --- comparing with the inventory -------------------------------------------------------------


@dataclass(frozen=True)
class Observed:
    kind: str
    subject: str
    expected: str = ""
    observed: str = ""


def _normal_uuid(uuid: str) -> str:
    return "GPU-" + uuid[4:].lower() if uuid.upper().startswith("GPU-") else uuid.lower()


def _compare(node: Node, report: dict[str, Any]) -> list[Observed]:
    found: list[Observed] = []
    if report["nvml_available"]:
        reported = {_normal_uuid(g["uuid"]): g for g in report["gpus"] if g["uuid"]}
        inventory = {gpu.uuid: gpu for gpu in node.gpus.all()}
        for uuid, gpu in inventory.items():
            seen = reported.get(uuid)
            if seen is None:
                found.append(Observed(K.GPU_MISSING, uuid, expected=f"GPU{gpu.index}"))
            elif gpu.serial and seen["serial"] and seen["serial"] != gpu.serial:
                found.append(Observed(K.GPU_SERIAL_MISMATCH, uuid, gpu.serial, seen["serial"]))
        for uuid, seen in reported.items():
            if uuid not in inventory:
                found.append(Observed(K.GPU_UNKNOWN, uuid, observed=seen["serial"] or ""))

    by_mac = {n["mac"]: n for n in report["nics"] if n["mac"]}
    # An IPoIB interface has no MAC; it answers for the inventory's InfiniBand NIC of its name.
    ipoib_by_name = {n["name"]: n for n in report["nics"] if not n["mac"]}
    inventory_macs = set()
    for nic in node.interfaces.all():
        inventory_macs.add(nic.mac)
        seen = by_mac.get(nic.mac)
        if seen is None and nic.kind == nic.Kind.INFINIBAND:
            seen = ipoib_by_name.get(nic.name)
        if seen is None:
            found.append(Observed(K.NIC_MISSING, nic.mac, expected=nic.name))
        elif nic.ib_guid and seen["ib_guid"] != nic.ib_guid:
            found.append(Observed(K.GUID_MISMATCH, nic.mac, nic.ib_guid, seen["ib_guid"] or ""))
    for mac, seen in by_mac.items():
        # Bridges, veths and bonds are the host's own business, not inventory.
        if mac not in inventory_macs and not seen["virtual"]:
            found.append(Observed(K.MAC_UNKNOWN, mac, observed=seen["name"]))
    return found


def _record_drift(node: Node, found: list[Observed], assessed: set[str]) -> list[Drift]:
    now = timezone.now()
    open_rows = {(d.kind, d.subject): d for d in node.drifts.filter(resolved_at=None)}
    new, refreshed = [], []
    for item in found:
        row = open_rows.pop((item.kind, item.subject[:120]), None)
        if row is None:
            row = Drift(node=node, kind=item.kind, subject=item.subject[:120])
            new.append(row)
        else:
            refreshed.append(row)
        row.expected, row.observed, row.last_seen = item.expected[:200], item.observed[:200], now
    Drift.objects.bulk_create(new)
    Drift.objects.bulk_update(refreshed, ["expected", "observed", "last_seen"])
    # What this report could not see (GPUs without NVML) stays as it was.
    gone = [row.pk for row in open_rows.values() if row.kind in assessed]
    Drift.objects.filter(pk__in=gone).update(resolved_at=now)
    return refreshed + new


@transaction.atomic
def node_report_ingest(*, node: Node, payload: Any) -> list[Drift]:
    """Store the agent's report and bring the node's drift rows up to date; returns the drift
    open after this report."""
    report = _validate(payload)
    node = Node.objects.select_for_update().get(pk=node.pk)
    NodeReport.objects.create(node=node, nvml_available=report["nvml_available"], payload=payload)
    stale = node.reports.order_by("-received_at", "-pk").values_list("pk", flat=True)[REPORTS_KEPT:]
    NodeReport.objects.filter(pk__in=list(stale)).delete()
    node.last_report_at = timezone.now()
    node.save(update_fields=["last_report_at"])

    # The BMC's own findings are its verification's to resolve (fabric.services.power).
    agent_kinds = set(Drift.Kind.values) - {Drift.Kind.BMC_SERIAL_MISMATCH}
    assessed = agent_kinds - (set() if report["nvml_available"] else GPU_KINDS)
    return _record_drift(node, _compare(node, report), assessed)
