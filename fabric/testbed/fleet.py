"""A realistic demo fleet: sites split into pods (scalable units) of racks, three GPU server
generations, rail-optimised InfiniBand (a leaf per rail for every 16 nodes), an Ethernet leaf/spine
fabric, storage and out-of-band switches, every NIC cabled, spares, and the site's IPAM."""

from __future__ import annotations

import ipaddress
import random
import uuid
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.backends.postgresql.psycopg_any import NumericRange

from fabric.models import (
    GPU,
    Cable,
    CableEnd,
    NetworkInterface,
    Node,
    NodeState,
    NumberPool,
    Pod,
    Prefix,
    Rack,
    Site,
    Switch,
    SwitchPort,
)
from fabric.services.changes import change_records_bulk
from portal.services.audit import Actor


@dataclass(frozen=True)
class Generation:
    node_type: str
    vendor: str
    model: str
    gpu_model: str
    gpus: int
    gpu_memory_mb: int
    cpu_model: str
    cpu_cores: int
    memory_gb: int
    ib_nics: int
    ib_speed: int
    eth_nics: int
    eth_speed: int
    rack_units: int
    mig_capable: bool


GENERATIONS = [
    Generation(
        "hgx-h100-8",
        "Supermicro",
        "SYS-821GE-TNHR",
        "NVIDIA H100 80GB HBM3",
        8,
        81559,
        "2x Intel Xeon Platinum 8480+",
        112,
        2048,
        8,
        400,
        2,
        200,
        8,
        True,
    ),
    Generation(
        "hgx-a100-8",
        "NVIDIA",
        "DGX A100",
        "NVIDIA A100-SXM4-80GB",
        8,
        81920,
        "2x AMD EPYC 7742",
        128,
        2048,
        8,
        200,
        2,
        100,
        6,
        True,
    ),
    Generation(
        "pcie-l40s-4",
        "Dell",
        "PowerEdge R760xa",
        "NVIDIA L40S",
        4,
        46068,
        "2x Intel Xeon Gold 6548Y+",
        64,
        1024,
        0,
        0,
        2,
        100,
        2,
        False,
    ),
]
# The generations whose demo servers are sold as bare metal: `make run`'s BMC emulator
# (manage.py testbed_switches) gives each of them a BMC beside the lab's own servers.
BARE_METAL_NODE_TYPES = ("hgx-h100-8", "hgx-a100-8")
NODES_PER_POD = 32
NODES_PER_RACK = 4
NODES_PER_LEAF = 16
SWITCH_UNITS = 1


class _Counter:
    """Identifiers unique across sites: the site number is part of every MAC, GUID and serial."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.site = 0
        self.mac = self.guid = self.gpu = 0

    def next_mac(self) -> str:
        self.mac += 1
        raw = (0x02 << 40) | (self.site << 24) | self.mac
        return ":".join(f"{(raw >> s) & 0xFF:02x}" for s in range(40, -8, -8))

    def next_guid(self) -> str:
        self.guid += 1
        raw = (0xB8CEF6 << 40) | (self.site << 24) | self.guid
        return ":".join(f"{(raw >> s) & 0xFFFF:04x}" for s in range(48, -16, -16))

    def gpu_uuid(self) -> str:
        return f"GPU-{uuid.UUID(int=self.rng.getrandbits(128))}"

    def gpu_serial(self) -> str:
        self.gpu += 1
        return f"1654{self.site:03d}{self.gpu:07d}"


@transaction.atomic
def fleet_exists() -> bool:
    return Node.objects.exists()


def fleet_bare_metal_nodes() -> list[Node]:
    """The demo sites' servers of the generations sold as bare metal."""
    return list(
        Node.objects.filter(site__name__regex=r"^dc[0-9]+$", node_type__in=BARE_METAL_NODE_TYPES)
        .select_related("site")
        .order_by("name")
    )


def fleet_generate(
    *,
    sites: int,
    nodes_per_site: int,
    actor: Actor,
    seed: int = 0,
    spare_fraction: float = 0.05,
) -> dict[str, int]:
    """Create `sites` sites of `nodes_per_site` nodes each (the generations in turn by pod);
    returns counts per kind. Names continue after any existing demo sites."""
    first_site = Site.objects.filter(name__startswith="dc").count() + 1
    rng = random.Random(f"{seed}/{first_site}")  # noqa: S311  (reproducible demo data)
    counter = _Counter(rng)
    created: list = []
    for site_number in range(first_site, first_site + sites):
        counter.site = site_number
        counter.mac = counter.guid = counter.gpu = 0
        created += _site(site_number, nodes_per_site, rng, counter, spare_fraction)
    change_records_bulk(actor=actor, created=created)
    with connection.cursor() as cursor:  # fresh statistics, so the planner sees the new fleet
        for table in ("fabric_node", "fabric_gpu", "fabric_networkinterface", "fabric_cableend"):
            cursor.execute(f"ANALYZE {table}")
    counts: dict[str, int] = {}
    for obj in created:
        key = obj.__class__.__name__
        counts[key] = counts.get(key, 0) + 1
    return counts


def _site(number: int, node_count: int, rng, counter: _Counter, spare_fraction) -> list:
    site = Site.objects.create(name=f"dc{number}", region=f"region-{(number + 1) // 2}")
    created: list = [site]
    mgmt = ipaddress.ip_network(f"10.{number}.0.0/16")
    bmc = ipaddress.ip_network(f"10.{100 + number}.0.0/16")
    created += Prefix.objects.bulk_create(
        [
            Prefix(site=site, vrf="mgmt", prefix=mgmt, role=Prefix.Role.MANAGEMENT),
            Prefix(site=site, vrf="bmc", prefix=bmc, role=Prefix.Role.BMC),
            Prefix(site=site, vrf="tenant", prefix=f"100.{64 + number}.0.0/16", role="tenant"),
            Prefix(site=site, vrf="storage", prefix=f"172.{15 + number}.0.0/16", role="storage"),
        ]
    )
    created += NumberPool.objects.bulk_create(
        [
            NumberPool(site=site, kind="vlan", name="tenant-vlans", values=NumericRange(100, 4000)),
            NumberPool(
                site=site,
                kind="vni",
                name="tenant-vnis",
                values=NumericRange(number * 100_000, number * 100_000 + 50_000),
            ),
            NumberPool(
                site=site, kind="pkey", name="tenant-pkeys", values=NumericRange(0x100, 0x7FFF)
            ),
        ]
    )
    mgmt_hosts = mgmt.hosts()
    bmc_hosts = bmc.hosts()
    spines = [
        Switch(
            name=f"{site.name}-spine{s + 1}",
            site=site,
            vendor="Arista",
            model="7800R3",
            platform=Switch.Platform.ARISTA_EOS,
            os_version="4.32.1F",
            management_address=next(mgmt_hosts),
            role=Switch.Role.SPINE,
        )
        for s in range(4)
    ]
    switches = list(spines)
    nodes, racks, pods = [], [], []
    pod_count = max(1, -(-node_count // NODES_PER_POD))
    for p in range(pod_count):
        generation = GENERATIONS[(number - 1 + p) % len(GENERATIONS)]
        pod = Pod(site=site, name=f"p{p + 1:02d}")
        pods.append(pod)
        in_pod = min(NODES_PER_POD, node_count - p * NODES_PER_POD)
        pod_racks = [
            Rack(site=site, pod=pod, name=f"{pod.name}-r{r + 1:02d}")
            for r in range(-(-in_pod // NODES_PER_RACK))
        ]
        racks += pod_racks
        pod_switches = [
            Switch(
                name=f"{site.name}-{pod.name}-eth{e + 1}",
                site=site,
                pod=pod,
                vendor="Arista",
                model="7060X5",
                platform=Switch.Platform.ARISTA_EOS,
                os_version="4.32.1F",
                management_address=next(mgmt_hosts),
                role=Switch.Role.LEAF,
            )
            for e in range(2)
        ] + [
            Switch(
                name=f"{site.name}-{pod.name}-stor1",
                site=site,
                pod=pod,
                vendor="NVIDIA",
                model="SN4700",
                platform=Switch.Platform.NVIDIA_CUMULUS,
                os_version="5.9",
                management_address=next(mgmt_hosts),
                role=Switch.Role.STORAGE,
            )
        ]
        # One InfiniBand leaf per rail for every 16 nodes: the pod's two halves are two leaves.
        rail_leaves = [
            [
                Switch(
                    name=f"{site.name}-{pod.name}-ib-l{half + 1}-rail{rail}",
                    site=site,
                    pod=pod,
                    vendor="NVIDIA",
                    model="QM9700",
                    platform=Switch.Platform.NVIDIA_UFM,
                    os_version="3.11",
                    management_address=next(mgmt_hosts),
                    role=Switch.Role.IB,
                    rail=rail,
                )
                for rail in range(generation.ib_nics)
            ]
            for half in range(-(-in_pod // NODES_PER_LEAF))
        ]
        switches += pod_switches + [s for leaf in rail_leaves for s in leaf]
        for n in range(in_pod):
            index = p * NODES_PER_POD + n
            rack = pod_racks[n // NODES_PER_RACK]
            spare = rng.random() < spare_fraction
            nodes.append(
                (
                    Node(
                        name=f"{site.name}-{pod.name}-n{n + 1:03d}",
                        serial=f"SN{number:02d}{index:06d}{rng.getrandbits(16):04X}",
                        vendor=generation.vendor,
                        model=generation.model,
                        node_type=generation.node_type,
                        gpu_model=generation.gpu_model,
                        cpu_model=generation.cpu_model,
                        cpu_cores=generation.cpu_cores,
                        memory_gb=generation.memory_gb,
                        site=site,
                        rack=rack,
                        rack_position=1 + (n % NODES_PER_RACK) * generation.rack_units,
                        rack_units=generation.rack_units,
                        bmc_address=next(bmc_hosts),
                        state=NodeState.SPARE if spare else NodeState.AVAILABLE,
                    ),
                    generation,
                    pod_switches + rail_leaves[n // NODES_PER_LEAF],
                )
            )
    created += Pod.objects.bulk_create(pods)
    for rack in racks:
        rack.pod_id = rack.pod.pk
    created += Rack.objects.bulk_create(racks)
    for switch in switches:
        switch.pod_id = switch.pod.pk if switch.pod else None
    created += Switch.objects.bulk_create(switches)
    for node, _, _ in nodes:
        node.rack_id = node.rack.pk
    created += Node.objects.bulk_create([n for n, _, _ in nodes], batch_size=2000)
    created += _hardware(nodes, counter, rng)
    first_leaf = next(s for s in switches if s.role == Switch.Role.LEAF)
    mac = f"02:fc:00:00:00:{number:02x}"
    return created + services_host_add(site=site, leaf=first_leaf, port_name="svc1", mac=mac)


def services_host_add(*, site: Site, leaf: Switch, port_name: str, mac: str) -> list:
    """The site's services host, which runs its tenant networks' jump hosts: no GPUs, never
    sold, one NIC on a trunk port of `leaf`. Returns what it created."""
    node = Node.objects.create(
        name=f"{site.name}-svc1",
        serial=f"SVC-{site.name}-1",
        vendor="Supermicro",
        model="SYS-1029P",
        node_type="services",
        role=Node.Role.SERVICES,
        site=site,
        state=NodeState.AVAILABLE,
    )
    nic = NetworkInterface.objects.create(node=node, name="eth0", mac=mac)
    port = SwitchPort.objects.create(switch=leaf, name=port_name)
    cable = Cable.objects.create(label=f"C-{node.name}-eth0")
    ends = [
        CableEnd.objects.create(cable=cable, side="a", interface=nic),
        CableEnd.objects.create(cable=cable, side="b", port=port),
    ]
    return [node, nic, port, cable, *ends]


def _hardware(nodes, counter: _Counter, rng) -> list:
    gpus, nics, nic_gpu = [], [], []
    for node, generation, _ in nodes:
        node_gpus = [
            GPU(
                node=node,
                index=i,
                uuid=counter.gpu_uuid(),
                serial=counter.gpu_serial(),
                model=generation.gpu_model,
                memory_mb=generation.gpu_memory_mb,
                pci_bus_id=f"00000000:{0x18 + i * 0x10:02X}:00.0",
                numa_node=i * 2 // generation.gpus,
                nvlink_domain=node.name if generation.ib_nics else "",
                mig_capable=generation.mig_capable,
            )
            for i in range(generation.gpus)
        ]
        gpus += node_gpus
        for rail in range(generation.ib_nics):
            nic = NetworkInterface(
                node=node,
                name=f"ibp{rail}",
                mac=counter.next_mac(),
                speed_gbps=generation.ib_speed,
                kind="infiniband",
                ib_guid=counter.next_guid(),
                rail=rail,
            )
            nics.append(nic)
            nic_gpu.append((nic, node_gpus[rail]))
        for e in range(generation.eth_nics):
            nics.append(
                NetworkInterface(
                    node=node,
                    name=f"eth{e}",
                    mac=counter.next_mac(),
                    speed_gbps=generation.eth_speed,
                    kind="ethernet",
                )
            )
    GPU.objects.bulk_create(gpus, batch_size=2000)
    for nic, gpu in nic_gpu:
        nic.nearest_gpu = gpu
    NetworkInterface.objects.bulk_create(nics, batch_size=2000)
    return gpus + nics + _cables(nodes)


def _cables(nodes) -> list:
    """Each InfiniBand NIC to its rail's leaf, each Ethernet NIC to one of the pod's leaves."""
    by_node: dict[int, list[NetworkInterface]] = {}
    for nic in NetworkInterface.objects.filter(node__in=[n for n, _, _ in nodes]).order_by("pk"):
        by_node.setdefault(nic.node_id, []).append(nic)
    ports, pairs, used = [], [], {}
    for node, _, pod_switches in nodes:
        rails = {s.rail: s for s in pod_switches if s.role == Switch.Role.IB}
        eth = [s for s in pod_switches if s.role == Switch.Role.LEAF]
        for nic in by_node.get(node.pk, []):
            switch = (
                rails[nic.rail] if nic.kind == "infiniband" else eth[int(nic.name[3:]) % len(eth)]
            )
            used[switch.pk] = used.get(switch.pk, 0) + 1
            port = SwitchPort(switch=switch, name=f"p{used[switch.pk]}", speed_gbps=nic.speed_gbps)
            ports.append(port)
            pairs.append((nic, port))
    SwitchPort.objects.bulk_create(ports, batch_size=2000)
    cables = [Cable(label=f"C-{nic.node.name}-{nic.name}", kind="aoc") for nic, _ in pairs]
    Cable.objects.bulk_create(cables, batch_size=2000)
    ends = []
    for cable, (nic, port) in zip(cables, pairs, strict=True):
        ends += [
            CableEnd(cable=cable, side="a", interface=nic),
            CableEnd(cable=cable, side="b", port=port),
        ]
    CableEnd.objects.bulk_create(ends, batch_size=2000)
    return ports + cables
