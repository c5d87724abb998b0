"""Simulator mode: a report built from a JSON hardware description instead of NVML and sysfs,
so a demo fleet without GPUs goes through the same report, post and drift path as real servers.

The description is `{"hostname": ..., "gpus": [{"uuid", "serial", "name", "memory_mb",
"pci_bus_id", ...}], "nics": [{"name", "mac", "kind", "speed_mbps", "ib_guid"}]}`; any other
key of a GPU or NIC (a temperature, ECC counts) overrides the healthy default."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .collect import report_envelope

DRIVER_VERSION = "simulated"


class DescriptionError(ValueError):
    pass


def _gpu(index: int, described: dict[str, Any]) -> dict[str, Any]:
    links = described.get("nvlink_links", 0)
    return {
        "index": index,
        "uuid": None,
        "name": None,
        "serial": None,
        "memory_mb": None,
        "pci_bus_id": None,
        "temperature_c": 35,
        "power_w": 70.0,
        "ecc": {
            "volatile_corrected": 0,
            "volatile_uncorrected": 0,
            "aggregate_corrected": 0,
            "aggregate_uncorrected": 0,
        },
        "retired_pages": {"single_bit_ecc": 0, "double_bit_ecc": 0},
        "nvlink": [{"link": n, "active": True} for n in range(links)] or None,
        "mig_mode": {"current": 0, "pending": 0} if described.get("mig_capable") else None,
        **{k: v for k, v in described.items() if k not in ("nvlink_links", "mig_capable")},
    }


def _nic(described: dict[str, Any]) -> dict[str, Any]:
    mac = described.get("mac")
    return {
        "name": None,
        "mac": mac.lower() if isinstance(mac, str) else mac,
        "address": mac,
        "kind": "ethernet",
        "speed_mbps": None,
        "operstate": "up",
        "virtual": False,
        "ib_device": None,
        "ib_guid": None,
        **{k: v for k, v in described.items() if k != "mac"},
    }


def simulate_report(description: dict[str, Any]) -> dict[str, Any]:
    gpus, nics = description.get("gpus", []), description.get("nics", [])
    if not isinstance(gpus, list) or not all(isinstance(g, dict) for g in gpus):
        raise DescriptionError("'gpus' must be a list of objects")
    if not isinstance(nics, list) or not all(isinstance(n, dict) for n in nics):
        raise DescriptionError("'nics' must be a list of objects")
    return {
        **report_envelope(source="simulator", hostname=description.get("hostname")),
        "nvml": {"available": True, "driver_version": DRIVER_VERSION, "error": None},
        "gpus": [_gpu(i, g) for i, g in enumerate(gpus)],
        "nics": [_nic(n) for n in nics],
    }


def load_description(path: str | Path) -> dict[str, Any]:
    try:
        description = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise DescriptionError(f"cannot read hardware description {path}: {exc}") from exc
    if not isinstance(description, dict):
        raise DescriptionError(f"{path}: the hardware description must be a JSON object")
    return description
