"""What each inventory spreadsheet holds: its columns, how a cell is read and written, the natural
keys that match a row to an object, and the references between kinds (by natural key, never by
database id). Sheets are imported in the order of KINDS, so a row may refer to any row of an
earlier sheet of the same workbook."""

from __future__ import annotations

import decimal
import ipaddress
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator
from django.db import models

from fabric.models import (
    GPU,
    Bmc,
    Cable,
    NetworkInterface,
    Node,
    Pod,
    Rack,
    Site,
    Switch,
    SwitchPort,
)
from fabric.power.credentials import reference_check

Parser = Callable[[str], Any]


# --- cell readers: each takes a non-empty, stripped string and returns a value or raises ------


def text(max_length: int) -> Parser:
    def parse(raw: str) -> str:
        if len(raw) > max_length:
            raise ValueError(f"longer than {max_length} characters")
        return raw

    return parse


def integer(low: int = 0, high: int = 2_147_483_647) -> Parser:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"{raw!r} is not a whole number") from None
        if not low <= value <= high:
            raise ValueError(f"{value} is outside {low}–{high}")
        return value

    parse.numeric = True  # type: ignore[attr-defined]
    return parse


def boolean(raw: str) -> bool:
    value = raw.lower()
    if value in ("true", "yes", "y", "1", "x"):
        return True
    if value in ("false", "no", "n", "0"):
        return False
    raise ValueError(f"{raw!r} is not true or false")


def length_m(raw: str) -> decimal.Decimal:
    try:
        value = decimal.Decimal(raw).quantize(decimal.Decimal("0.01"))
    except (decimal.InvalidOperation, ValueError):
        raise ValueError(f"{raw!r} is not a length in metres") from None
    if not 0 < value < 10_000:
        raise ValueError(f"{raw} m is not a cable length")
    return value


def choice(choices: type[models.TextChoices]) -> Parser:
    def parse(raw: str) -> str:
        if raw in choices.values:
            return raw
        raise ValueError(f"{raw!r} is not one of {', '.join(choices.values)}")

    return parse


def ip_address(raw: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(raw)
    except ValueError:
        raise ValueError(f"{raw!r} is not an IP address") from None


_HEX = re.compile(r"[^0-9a-f]")
_MAC = re.compile(r"[0-9a-f]{12}|([0-9a-f]{2}[:-]){5}[0-9a-f]{2}|([0-9a-f]{4}\.){2}[0-9a-f]{4}")


def mac(raw: str) -> str:
    """aa:bb:cc:dd:ee:ff from any common spelling (AA-BB-…, aabb.ccdd.eeff, aabbccddeeff)."""
    if not _MAC.fullmatch(raw.lower()):
        raise ValueError(f"{raw!r} is not a MAC address")
    digits = _HEX.sub("", raw.lower())
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def guid(raw: str) -> str:
    """An InfiniBand port GUID as xxxx:xxxx:xxxx:xxxx (16 hex digits, any separators)."""
    value = raw.lower().removeprefix("0x")
    if not re.fullmatch(r"[0-9a-f:.-]+", value) or len(digits := _HEX.sub("", value)) != 16:
        raise ValueError(f"{raw!r} is not an InfiniBand GUID")
    return ":".join(digits[i : i + 4] for i in range(0, 16, 4))


def gpu_uuid(raw: str) -> str:
    if not raw.upper().startswith("GPU-"):
        raise ValueError(f"{raw!r} is not a GPU UUID (GPU-xxxxxxxx-…)")
    try:
        return "GPU-" + str(uuid.UUID(raw[4:]))
    except ValueError:
        raise ValueError(f"{raw!r} is not a GPU UUID (GPU-xxxxxxxx-…)") from None


_URL = URLValidator(schemes=["http", "https"])


def bmc_url(raw: str) -> str:
    """A Redfish service: its URL, or an address or host name alone for https://<it>."""
    url = (raw if "://" in raw else f"https://{raw}").rstrip("/")
    try:
        _URL(url)
    except DjangoValidationError:
        raise ValueError(f"{raw!r} is not a BMC address or http(s) URL") from None
    if len(url) > 200:
        raise ValueError("longer than 200 characters")
    return url


def password_reference(raw: str) -> str:
    reference_check(raw)  # BadReference is a ValueError that says what is wrong
    return raw


_TEXT64 = text(64)


# --- columns and kinds ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Ref:
    """The cell names an object of `kind` by its reference key: (handle of the `scope` column's
    object, if any) + the cell's value. `create` makes the object when nothing matches."""

    kind: str
    scope: str | None = None
    create: bool = False


@dataclass(frozen=True)
class Column:
    name: str
    help: str
    parse: Parser = _TEXT64
    required: bool = False
    default: Any = None  # the value of an empty cell
    ref: Ref | None = None
    field: str | None = ""  # the model field; "" = same as name, None = not a model field
    export: str = ""  # ORM lookup read by the exporter; "" = the field (its name for a reference)
    # Write-only: stored encrypted (fabric.secrets), never exported, and an empty cell keeps
    # what is stored.
    secret: bool = False

    @property
    def numeric(self) -> bool:
        return getattr(self.parse, "numeric", False)

    @property
    def model_field(self) -> str | None:
        return self.name if self.field == "" else self.field


@dataclass(frozen=True)
class Kind:
    name: str
    model: type[models.Model]
    columns: tuple[Column, ...]
    match: tuple[tuple[str, ...], ...]  # keys that find an existing object, tried in order
    unique: tuple[tuple[str, ...], ...] = ()  # further keys no two objects may share
    # Columns that identify the hardware (serial, UUID, MAC, GUID): among the keys, and never
    # moved by an import from the object that holds one to another.
    identifiers: tuple[str, ...] = ()
    ref_key: tuple[str, ...] = ("name",)  # what other rows use to refer to this kind
    sheet: bool = True  # False: made only through a Ref with create=True
    column: dict[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "column", {c.name: c for c in self.columns})
        assert all((c,) in self.keys for c in self.identifiers), self.name

    @property
    def keys(self) -> tuple[tuple[str, ...], ...]:
        return self.match + self.unique

    @property
    def singular(self) -> str:
        return self.name.removesuffix("es" if self.name.endswith("ches") else "s")

    @property
    def headers(self) -> list[str]:
        return [c.name for c in self.columns]


def _name(model: type[models.Model], help: str = "name") -> Column:
    return Column("name", help, text(model._meta.get_field("name").max_length), required=True)


SITE = Column("site", "site name (sites sheet)", required=True, ref=Ref("sites"))
POD = Column("pod", "pod name in the site; created if missing", ref=Ref("pods", "site", True))
RACK = Column("rack", "rack name in the site (racks sheet)", ref=Ref("racks", "site"))
POSITION = Column("rack_position", "lowest rack unit, 1 = bottom; needs a rack", integer(1, 60))
UNITS = Column("rack_units", "height in rack units", integer(1, 10), default=1)
NODE = Column("node", "node name (nodes sheet)", required=True, ref=Ref("nodes"))


def _end(side: str) -> tuple[Column, ...]:
    s = side.upper()
    return (
        Column(f"{side}_node", f"{s} end: node name", ref=Ref("nodes"), field=None),
        Column(
            f"{side}_interface",
            f"{s} end: interface name on that node (nics sheet)",
            ref=Ref("nics", f"{side}_node"),
            field=None,
        ),
        Column(f"{side}_switch", f"{s} end: switch name", ref=Ref("switches"), field=None),
        Column(
            f"{side}_port",
            f"{s} end: port name on that switch; created if missing",
            ref=Ref("ports", f"{side}_switch", True),
            field=None,
        ),
    )


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            "sites",
            Site,
            (
                _name(Site, "site name, unique"),
                Column("region", "region", text(64)),
                Column("description", "free text", text(200)),
            ),
            match=(("name",),),
        ),
        Kind(
            "pods",
            Pod,
            (SITE, _name(Pod)),
            match=(("site", "name"),),
            ref_key=("site", "name"),
            sheet=False,
        ),
        Kind(
            "racks",
            Rack,
            (
                SITE,
                _name(Rack, "rack name, unique in its site"),
                POD,
                Column("u_height", "rack height in units", integer(1, 60), default=42),
            ),
            match=(("site", "name"),),
            ref_key=("site", "name"),
        ),
        Kind(
            "nodes",
            Node,
            (
                Column("serial", "vendor serial number, unique", required=True),
                _name(Node, "hostname, unique"),
                SITE,
                RACK,
                POSITION,
                UNITS,
                Column("vendor", "e.g. Supermicro", required=True),
                Column("model", "vendor model", required=True),
                Column("node_type", "e.g. hgx-h100-8", required=True),
                Column(
                    "role",
                    "server (sold to tenants) or services (runs the jump hosts)",
                    choice(Node.Role),
                    default=Node.Role.SERVER.value,
                ),
                Column("gpu_model", "e.g. H100-SXM5-80GB"),
                Column("cpu_model", "CPU model"),
                Column("cpu_cores", "CPU cores", integer(0, 32767), default=0),
                Column("memory_gb", "memory in GB", integer(), default=0),
                Column("bmc_address", "BMC IP address, unique", ip_address),
            ),
            match=(("serial",), ("name",)),
            unique=(("bmc_address",),),
            identifiers=("serial",),
        ),
        Kind(
            "gpus",
            GPU,
            (
                Column("uuid", "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", gpu_uuid, True),
                NODE,
                Column("index", "index on the node, from 0", integer(0, 63), required=True),
                Column("serial", "GPU serial, unique"),
                Column("model", "e.g. H100-SXM5-80GB", required=True),
                Column("memory_mb", "memory in MiB", integer(1), required=True),
                Column("pci_bus_id", "e.g. 00000000:18:00.0", text(32), required=True),
                Column("numa_node", "NUMA node", integer(0, 255)),
                Column("nvlink_domain", "NVLink domain name"),
                Column("mig_capable", "true or false", boolean, default=False),
            ),
            match=(("uuid",),),
            unique=(("serial",), ("node", "index"), ("node", "pci_bus_id")),
            ref_key=("node", "index"),
            identifiers=("uuid", "serial"),
        ),
        Kind(
            "nics",
            NetworkInterface,
            (
                Column("mac", "MAC address, unique (aa:bb:cc:dd:ee:ff)", mac, required=True),
                NODE,
                Column("name", "interface name, unique on its node", text(32), required=True),
                Column(
                    "kind",
                    "ethernet or infiniband",
                    choice(NetworkInterface.Kind),
                    default=NetworkInterface.Kind.ETHERNET.value,
                ),
                Column("speed_gbps", "link speed in Gb/s", integer(), default=0),
                Column("ib_guid", "InfiniBand port GUID, unique; infiniband only", guid),
                Column("rail", "rail number", integer(0, 255)),
                Column(
                    "nearest_gpu",
                    "index of the closest GPU on the same node",
                    integer(0, 63),
                    ref=Ref("gpus", "node"),
                    export="nearest_gpu__index",
                ),
            ),
            match=(("mac",), ("ib_guid",)),
            unique=(("node", "name"),),
            ref_key=("node", "name"),
            identifiers=("mac", "ib_guid"),
        ),
        Kind(
            "switches",
            Switch,
            (
                _name(Switch, "switch name, unique"),
                SITE,
                POD,
                RACK,
                POSITION,
                UNITS,
                Column("vendor", "e.g. Arista", required=True),
                Column("model", "vendor model"),
                Column("serial", "serial number, unique"),
                Column("platform", "driver platform", choice(Switch.Platform), required=True),
                Column("os_version", "OS version"),
                Column("management_address", "management IP, unique", ip_address, True),
                Column("role", "leaf, spine, storage, oob or ib", choice(Switch.Role), True),
                Column("rail", "rail number", integer(0, 255)),
            ),
            match=(("name",),),
            unique=(("serial",), ("management_address",)),
            identifiers=("serial",),
        ),
        Kind(
            "ports",
            SwitchPort,
            (
                Column("switch", "switch name", required=True, ref=Ref("switches")),
                _name(SwitchPort),
            ),
            match=(("switch", "name"),),
            ref_key=("switch", "name"),
            sheet=False,
        ),
        Kind(
            "cables",
            Cable,
            (
                Column("label", "cable label, unique", required=True),
                Column("kind", "e.g. dac, aoc, fiber", text(32)),
                Column("length_m", "length in metres", length_m),
                *_end("a"),
                *_end("b"),
            ),
            match=(("label",),),
            ref_key=("label",),
        ),
        Kind(
            "bmcs",
            Bmc,
            (
                Column(
                    "node",
                    "node name (nodes sheet); one BMC per node",
                    required=True,
                    ref=Ref("nodes"),
                ),
                Column(
                    "address",
                    "BMC address or host (https:// assumed) or its Redfish URL",
                    bmc_url,
                    required=True,
                    field="url",
                    export="url",
                ),
                Column("system_id", "ComputerSystem path; empty: the BMC's only system", text(200)),
                Column("username", "BMC user", required=True),
                Column(
                    "password",
                    "BMC password: write-only, never exported; empty keeps it",
                    text(200),
                    field="password_encrypted",
                    secret=True,
                ),
                Column(
                    "password_ref",
                    "or where it lives: env:VARIABLE or file:/path",
                    password_reference,
                ),
                Column("verify_tls", "check the BMC's TLS certificate", boolean, default=True),
                Column(
                    "driver", "power protocol", choice(Bmc.Driver), default=Bmc.Driver.REDFISH.value
                ),
            ),
            match=(("node",),),
            ref_key=("node",),
        ),
    )
}

SHEETS: list[str] = [k.name for k in KINDS.values() if k.sheet]
