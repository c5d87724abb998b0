"""Read the hardware: GPUs through NVML, network interfaces and InfiniBand GUIDs from sysfs.

Every optional query is guarded: a GPU or driver that does not support it yields null, never a
crash, so one old card or a missing kernel module cannot silence a whole node's report."""

from __future__ import annotations

import contextlib
import datetime
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import AGENT_VERSION

ARPHRD_INFINIBAND = "32"  # /sys/class/net/<if>/type of an IPoIB interface
ZERO_GUID = "0000:0000:0000:0000"
UTC = datetime.timezone.utc  # noqa: UP017  (datetime.UTC is 3.11+; servers may run older Pythons)


def _read(path: Path) -> str | None:
    """A sysfs attribute's text, or None when it is absent or unreadable (the kernel answers
    EINVAL for `speed` on a link that is down)."""
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _as_text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _guid_from_gid(gid: str | None) -> str | None:
    """The port GUID is the interface-id half of the port's first GID."""
    if not gid:
        return None
    groups = gid.lower().split(":")
    if len(groups) != 8:
        return None
    guid = ":".join(groups[4:])
    return None if guid == ZERO_GUID else guid


def _ib_port(device: Path, ifname: str, net: Path) -> Path | None:
    ports = sorted(
        (device / "ports").glob("*"), key=lambda p: int(p.name) if p.name.isdigit() else 0
    )
    if not ports:
        return None
    dev_port = _read(net / ifname / "dev_port")
    wanted = str(int(dev_port) + 1) if dev_port and dev_port.isdigit() else ports[0].name
    return next((p for p in ports if p.name == wanted), ports[0])


def _infiniband_by_netdev(root: Path, net: Path) -> dict[str, tuple[str, str | None]]:
    """{netdev: (ib device, port GUID)} for each RDMA device bound to a network interface."""
    found: dict[str, tuple[str, str | None]] = {}
    for device in sorted((root / "sys/class/infiniband").glob("*")):
        for netdev in sorted((device / "device/net").glob("*")):
            port = _ib_port(device, netdev.name, net)
            guid = None
            if port is not None and (_read(port / "link_layer") or "InfiniBand") == "InfiniBand":
                guid = _guid_from_gid(_read(port / "gids/0")) or _read(device / "node_guid")
            found[netdev.name] = (device.name, guid.lower() if guid else None)
    return found


def _speed(value: str | None) -> int | None:
    if value is None or not value.lstrip("-").isdigit() or int(value) < 0:
        return None
    return int(value)


def collect_nics(sysfs_root: str | Path = "/") -> list[dict[str, Any]]:
    root = Path(sysfs_root)
    net = root / "sys/class/net"
    infiniband = _infiniband_by_netdev(root, net)
    nics = []
    for path in sorted(net.glob("*")):
        if path.name == "lo":
            continue
        address = (_read(path / "address") or "").lower()
        is_ib = _read(path / "type") == ARPHRD_INFINIBAND
        ib_device, ib_guid = infiniband.get(path.name, (None, None))
        nics.append(
            {
                "name": path.name,
                # An IPoIB link-layer address has 20 bytes; only a 6-byte one is a MAC.
                "mac": address if address.count(":") == 5 else None,
                "address": address or None,
                "kind": "infiniband" if is_ib else "ethernet",
                "speed_mbps": _speed(_read(path / "speed")),
                "operstate": _read(path / "operstate"),
                "virtual": not (path / "device").exists(),
                "ib_device": ib_device,
                "ib_guid": ib_guid if is_ib else None,
            }
        )
    return nics


def _gpu(nvml: Any, index: int) -> dict[str, Any]:
    def query(fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except nvml.NVMLError:
            return None

    try:
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
    except nvml.NVMLError as exc:  # a GPU that fell off the bus, for instance
        return {"index": index, "uuid": None, "error": f"{type(exc).__name__}: {exc}"}

    memory = query(nvml.nvmlDeviceGetMemoryInfo, handle)
    pci = query(nvml.nvmlDeviceGetPciInfo, handle)
    power_mw = query(nvml.nvmlDeviceGetPowerUsage, handle)
    uuid = query(nvml.nvmlDeviceGetUUID, handle)
    serial = query(nvml.nvmlDeviceGetSerial, handle)
    name = query(nvml.nvmlDeviceGetName, handle)
    mig = query(nvml.nvmlDeviceGetMigMode, handle)

    ecc = {}
    for counter, counter_name in (
        (nvml.NVML_VOLATILE_ECC, "volatile"),
        (nvml.NVML_AGGREGATE_ECC, "aggregate"),
    ):
        for error, error_name in (
            (nvml.NVML_MEMORY_ERROR_TYPE_CORRECTED, "corrected"),
            (nvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, "uncorrected"),
        ):
            ecc[f"{counter_name}_{error_name}"] = query(
                nvml.nvmlDeviceGetTotalEccErrors, handle, error, counter
            )

    retired = {}
    for cause, cause_name in (
        (nvml.NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS, "single_bit_ecc"),
        (nvml.NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR, "double_bit_ecc"),
    ):
        pages = query(nvml.nvmlDeviceGetRetiredPages, handle, cause)
        retired[cause_name] = None if pages is None else len(pages)

    links = []
    for link in range(nvml.NVML_NVLINK_MAX_LINKS):
        state = query(nvml.nvmlDeviceGetNvLinkState, handle, link)
        if state is not None:
            links.append({"link": link, "active": state == nvml.NVML_FEATURE_ENABLED})

    return {
        "index": index,
        "uuid": _as_text(uuid) if uuid is not None else None,
        "name": _as_text(name) if name is not None else None,
        "serial": _as_text(serial) if serial is not None else None,
        "memory_mb": memory.total // (1024 * 1024) if memory is not None else None,
        "pci_bus_id": _as_text(pci.busId) if pci is not None else None,
        "temperature_c": query(nvml.nvmlDeviceGetTemperature, handle, nvml.NVML_TEMPERATURE_GPU),
        "power_w": round(power_mw / 1000, 1) if power_mw is not None else None,
        "ecc": ecc,
        "retired_pages": retired,
        "nvlink": links or None,
        "mig_mode": {"current": mig[0], "pending": mig[1]} if mig is not None else None,
    }


def collect_gpus() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the NVML status, one entry per GPU). NVML missing is a status, not an error: the node
    still reports its NICs."""
    try:
        import pynvml as nvml
    except ImportError as exc:
        return {"available": False, "driver_version": None, "error": f"pynvml: {exc}"}, []
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as exc:
        return {
            "available": False,
            "driver_version": None,
            "error": f"{type(exc).__name__}: {exc}",
        }, []
    try:
        try:
            driver = _as_text(nvml.nvmlSystemGetDriverVersion())
        except nvml.NVMLError:
            driver = None
        gpus = [_gpu(nvml, i) for i in range(nvml.nvmlDeviceGetCount())]
        return {"available": True, "driver_version": driver, "error": None}, gpus
    finally:
        with contextlib.suppress(nvml.NVMLError):
            nvml.nvmlShutdown()


def report_envelope(*, source: str, hostname: str | None = None) -> dict[str, Any]:
    return {
        "agent_version": AGENT_VERSION,
        "source": source,
        "hostname": hostname or socket.gethostname(),
        "collected_at": datetime.datetime.now(UTC).isoformat(timespec="seconds"),
    }


def collect_report(sysfs_root: str | Path = "/") -> dict[str, Any]:
    nvml, gpus = collect_gpus()
    return {
        **report_envelope(source="host"),
        "nvml": nvml,
        "gpus": gpus,
        "nics": collect_nics(sysfs_root),
    }
