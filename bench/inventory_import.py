"""Inventory import at fleet scale: a generated workbook of 1,250 HGX nodes (10,000 GPUs, 12 NICs
each with MACs and InfiniBand GUIDs, leaf switches, a cable from every NIC to a switch port)
is written to var/bench/, read back and imported; then the same for a 10 times smaller fleet as the
baseline. Each import runs in a transaction that is rolled back, so the database is unchanged.

    python -m portal.embedded run -- .venv/bin/python bench/inventory_import.py [--nodes 1250]

Prints rows, seconds (reading the file, and importing), rows per second and the per-row time of
the large import over the small one (1.0 = linear).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import random
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NODES_PER_RACK = 4
NODES_PER_POD = 32  # one scalable unit: a leaf per rail
GPUS = 8


def generate(nodes: int, seed: int = 1250) -> dict[str, list[list]]:
    """Rows per kind in the spreadsheet's column order (no database)."""
    from fabric.spreadsheets.spec import KINDS

    rng = random.Random(seed)
    data: dict[str, list[dict]] = {k: [] for k in ("sites", "racks", "nodes", "gpus")}
    data |= {k: [] for k in ("nics", "switches", "cables")}
    site = "bench-dc1"
    data["sites"].append({"name": site, "region": "bench", "description": "generated"})
    bmc = ipaddress.ip_address("198.18.0.10")
    mgmt = ipaddress.ip_address("198.19.0.10")
    pods = (nodes + NODES_PER_POD - 1) // NODES_PER_POD
    leaves = [(f"ib-r{r}", "ufm", "ib", r, "nvidia", 400) for r in range(GPUS)]
    leaves += [("fe-a", "arista_eos", "leaf", None, "arista", 200)]
    leaves += [("fe-b", "arista_eos", "leaf", None, "arista", 200)]
    leaves += [("st-a", "dell_sonic", "storage", None, "dell", 200)]
    leaves += [("st-b", "dell_sonic", "storage", None, "dell", 200)]
    for pod in range(pods):
        for n, (name, platform, role, rail, vendor, _) in enumerate(leaves):
            data["switches"].append(
                {
                    "name": f"bench-su{pod:02d}-{name}",
                    "site": site,
                    "pod": f"su{pod:02d}",
                    "vendor": vendor,
                    "model": "QM9700" if role == "ib" else "7060X",
                    "serial": f"BSW{pod:03d}{n:02d}{rng.randrange(16**4):04X}",
                    "platform": platform,
                    "os_version": "1.0",
                    "management_address": str(mgmt + pod * 16 + n),
                    "role": role,
                    "rail": rail,
                }
            )
    mac = 0x02BE_0000_0000 + rng.randrange(1 << 20)
    cable = 0
    for i in range(nodes):
        pod, slot = divmod(i, NODES_PER_POD)
        rack = f"r{i // NODES_PER_RACK:04d}"
        if i % NODES_PER_RACK == 0:
            data["racks"].append(
                {"site": site, "name": rack, "pod": f"su{pod:02d}", "u_height": 42}
            )
        node = f"bench-gpu{i:04d}"
        data["nodes"].append(
            {
                "serial": f"BENCH{i:05d}{rng.randrange(16**6):06X}",
                "name": node,
                "site": site,
                "rack": rack,
                "rack_position": 1 + 8 * (i % NODES_PER_RACK),
                "rack_units": 8,
                "vendor": "Supermicro",
                "model": "SYS-821GE-TNHR",
                "node_type": "hgx-h100-8",
                "gpu_model": "H100-SXM5-80GB",
                "cpu_model": "Xeon 8480+",
                "cpu_cores": 112,
                "memory_gb": 2048,
                "bmc_address": str(bmc + i),
            }
        )
        for g in range(GPUS):
            data["gpus"].append(
                {
                    "uuid": f"GPU-{uuid.UUID(int=rng.getrandbits(128), version=4)}",
                    "node": node,
                    "index": g,
                    "serial": f"165{i:05d}{g}{rng.randrange(10**4):04d}",
                    "model": "H100-SXM5-80GB",
                    "memory_mb": 81559,
                    "pci_bus_id": f"00000000:{0x18 + 0x10 * g:02X}:00.0",
                    "numa_node": g // 4,
                    "nvlink_domain": node,
                    "mig_capable": "true",
                }
            )
        nics = [(f"ibp{r}", "infiniband", 400, r, r, f"ib-r{r}") for r in range(GPUS)]
        nics += [("eth0", "ethernet", 200, None, None, "fe-a")]
        nics += [("eth1", "ethernet", 200, None, None, "fe-b")]
        nics += [("stor0", "ethernet", 200, None, None, "st-a")]
        nics += [("stor1", "ethernet", 200, None, None, "st-b")]
        for name, kind, speed, rail, gpu, leaf in nics:
            mac += 1
            address = ":".join(f"{mac:012x}"[j : j + 2] for j in range(0, 12, 2))
            guid = f"{0xB8CE_F603_0000_0000 + mac:016x}"
            data["nics"].append(
                {
                    "mac": address,
                    "node": node,
                    "name": name,
                    "kind": kind,
                    "speed_gbps": speed,
                    "ib_guid": ":".join(guid[j : j + 4] for j in range(0, 16, 4))
                    if kind == "infiniband"
                    else None,
                    "rail": rail,
                    "nearest_gpu": gpu,
                }
            )
            cable += 1
            data["cables"].append(
                {
                    "label": f"BC{cable:06d}",
                    "kind": "aoc" if kind == "infiniband" else "dac",
                    "length_m": f"{rng.choice((1, 2, 3, 5)):.2f}",
                    "a_node": node,
                    "a_interface": name,
                    "b_switch": f"bench-su{pod:02d}-{leaf}",
                    "b_port": f"p{slot + 1}",
                }
            )
    return {k: [[r.get(h) for h in KINDS[k].headers] for r in rows] for k, rows in data.items()}


def write_xlsx(data: dict[str, list[list]], path: Path) -> None:
    from openpyxl import Workbook

    from fabric.spreadsheets.spec import KINDS

    book = Workbook(write_only=True)
    for kind, rows in data.items():
        sheet = book.create_sheet(kind)
        sheet.append(KINDS[kind].headers)
        for row in rows:
            sheet.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)


class _Rollback(Exception):
    pass


def measure(nodes: int) -> dict:
    from django.db import transaction

    from fabric.spreadsheets import inventory_import, read_xlsx
    from portal.services.audit import Actor

    data = generate(nodes)
    rows = sum(len(r) for r in data.values())
    path = ROOT / "var" / "bench" / f"inventory-{nodes}.xlsx"
    write_xlsx(data, path)
    started = time.perf_counter()
    sheets = read_xlsx(path.read_bytes(), filename=path.name)
    read_s = time.perf_counter() - started
    started = time.perf_counter()
    try:
        with transaction.atomic():
            report = inventory_import(sheets=sheets, actor=Actor.system())
            import_s = time.perf_counter() - started
            raise _Rollback
    except _Rollback:
        pass
    if not report.ok:
        raise SystemExit("\n".join(report.lines()[:20]))
    return {
        "nodes": nodes,
        "rows": rows,
        "change_records": report.change_records,
        "read_s": round(read_s, 2),
        "import_s": round(import_s, 2),
        "rows_per_s": round(rows / import_s),
        "file": str(path.relative_to(ROOT)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=1250)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    small = measure(max(args.nodes // 10, 1))
    large = measure(args.nodes)
    ratio = (large["import_s"] / large["rows"]) / (small["import_s"] / small["rows"])
    for result in (small, large):
        print(
            f"{result['nodes']:>5} nodes  {result['rows']:>6} rows  "
            f"read {result['read_s']:6.2f} s  import {result['import_s']:6.2f} s  "
            f"{result['rows_per_s']:>6} rows/s  {result['change_records']} change records  "
            f"({result['file']})"
        )
    print(f"per-row time, large / small: {ratio:.2f}")


if __name__ == "__main__":
    main()
