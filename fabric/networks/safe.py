"""Every value that reaches a device CLI passes through here: names from a strict allow-list of
characters and lengths, numbers within their protocol ranges, addresses parsed. Tenant text
never reaches a device: names are built from ids, not from what a tenant typed."""

from __future__ import annotations

import ipaddress
import re

from django.core.exceptions import ValidationError

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,31}$")
_INTERFACE = re.compile(r"^[A-Za-z][A-Za-z0-9/._:-]{0,47}$")
_GUID = re.compile(r"^([0-9a-f]{4}:){3}[0-9a-f]{4}$")
RANGES = {
    "vlan": (2, 4094),
    "vni": (1, 16_777_215),
    "pkey": (1, 0x7FFE),
    "port": (1, 65535),
}


class UnsafeValue(ValidationError):
    pass


def name(value: str) -> str:
    """A VRF, VLAN or policy name: a letter, then letters, digits, '_', '.', '-'; 32 at most."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise UnsafeValue(f"{value!r} is not an allowed device name.")
    return value


def interface(value: str) -> str:
    """A switch interface name such as Ethernet1/1, xe-0/0/1 or swp12."""
    if not isinstance(value, str) or not _INTERFACE.fullmatch(value):
        raise UnsafeValue(f"{value!r} is not an allowed interface name.")
    return value


def number(kind: str, value: int) -> int:
    low, high = RANGES[kind]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise UnsafeValue(f"{value!r} is not a valid {kind} ({low}-{high}).")
    return value


def guid(value: str) -> str:
    if not isinstance(value, str) or not _GUID.fullmatch(value):
        raise UnsafeValue(f"{value!r} is not an InfiniBand port GUID.")
    return value


def network(value) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(str(value), strict=True)
    except ValueError as exc:
        raise UnsafeValue(f"{value!r} is not a network prefix.") from exc


def gateway(value) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    try:
        return ipaddress.ip_interface(str(value))
    except ValueError as exc:
        raise UnsafeValue(f"{value!r} is not an interface address.") from exc
