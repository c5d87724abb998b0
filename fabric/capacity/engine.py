"""Topology-aware placement over an in-memory snapshot of free capacity.

The fleet is a tree of topology domains: node -> leaf -> rail group -> InfiniBand island ->
site. Indexes kept up to date on every booking make each decision cost roughly the number of
domains, not the number of nodes:

- whole nodes: per GPU model, per level, per domain, the set of completely free nodes; a gang
  of N goes to the fullest (best-fitting) domain at the smallest level that holds N, and inside
  it to the fullest leaves first, so free capacity stays together;
- GPUs: per model, nodes bucketed by how many GPUs they have free; k GPUs go to the node with
  the fewest free that still fits (best fit), keeping whole nodes whole;
- MIG slices: per model, GPUs bucketed by free slice units; a slice goes to the GPU with the
  least room that fits, at the lowest aligned offset.

No decision touches the database. The caller commits it; an exclusion constraint there has the
final word if this snapshot was stale.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

LEVELS = ("leaf", "group", "island", "site")
TOPOLOGIES = {"same-leaf": 0, "same-rail-group": 1, "same-ib-island": 2, "any": 3}
SLICE_UNITS = 7  # compute slices of an A100/H100 in MIG mode
PROFILES = {"1g": 1, "2g": 2, "3g": 3, "4g": 4, "7g": 7}
FULL_UNITS = (1 << SLICE_UNITS) - 1


@dataclass
class NodeCap:
    id: int
    model: str
    gpu_ids: tuple[int, ...]
    domains: tuple[str, str, str, str]  # leaf, group, island, site
    mig: bool = False
    bmc: bool = False  # its power is the platform's (a BMC on record): sellable as bare metal
    free: int = 0  # bitmask: GPUs with every slice unit free
    units: list[int] = field(default_factory=list)  # per GPU: bitmask of free slice units

    def __post_init__(self):
        if not self.units:  # a node with nothing booked
            self.units = [FULL_UNITS] * len(self.gpu_ids)
            self.free = (1 << len(self.gpu_ids)) - 1

    @property
    def size(self) -> int:
        return len(self.gpu_ids)

    @property
    def free_count(self) -> int:
        return self.free.bit_count()

    @property
    def whole(self) -> bool:
        return self.free_count == self.size


@dataclass(frozen=True)
class Request:
    model: str
    count: int
    shape: str = "node"  # node | gpu | slice
    topology: str = "any"
    required: bool = True
    profile: str = ""  # for slices: 1g..7g
    site: str = ""  # whole nodes: only at this site ("": anywhere)
    bmc: bool = False  # whole nodes: only those with a BMC (bare metal)


@dataclass(frozen=True)
class Placement:
    """What to book: whole nodes, or (node id, GPU position, first slice unit, units) per GPU."""

    gpus: tuple[tuple[int, int, int, int], ...] = ()
    level: str = "node"  # the topology level it fits in ("global" when it spans sites)
    whole_nodes: tuple[int, ...] = ()

    @property
    def node_ids(self) -> list[int]:
        return sorted({*self.whole_nodes, *(g[0] for g in self.gpus)})


class Snapshot:
    """Free capacity of a fleet, with the indexes that make placement fast."""

    def __init__(self, nodes: list[NodeCap]):
        self.nodes = {n.id: n for n in nodes}
        # whole[model][level][domain] -> ids of completely free nodes
        self.whole: dict[str, list[dict[str, set[int]]]] = defaultdict(
            lambda: [defaultdict(set) for _ in LEVELS]
        )
        # by_free[model][k] -> ids of nodes with exactly k free GPUs (0 < k)
        self.by_free: dict[str, dict[int, set[int]]] = defaultdict(lambda: defaultdict(set))
        # sliced[model][free units] -> (node id, gpu position) of GPUs partly booked
        self.sliced: dict[str, dict[int, set[tuple[int, int]]]] = defaultdict(
            lambda: defaultdict(set)
        )
        self._free_total: dict[str, int] = defaultdict(int)
        self.with_bmc = {n.id for n in nodes if n.bmc}
        for node in nodes:
            self._index(node, add=True)

    # --- index upkeep --------------------------------------------------------------------------

    def _index(self, node: NodeCap, *, add: bool) -> None:
        def put(bucket: set, item) -> None:
            bucket.add(item) if add else bucket.discard(item)

        self._free_total[node.model] += node.free_count if add else -node.free_count
        if node.whole:
            for level, domain in enumerate(node.domains):
                put(self.whole[node.model][level][domain], node.id)
        if node.free_count:
            put(self.by_free[node.model][node.free_count], node.id)
        if node.mig:
            for position, units in enumerate(node.units):
                if units and units != FULL_UNITS:
                    put(self.sliced[node.model][units.bit_count()], (node.id, position))

    def book(self, placement: Placement) -> None:
        self._apply(placement, take=True)

    def release(self, placement: Placement) -> None:
        self._apply(placement, take=False)

    def _apply(self, placement: Placement, *, take: bool) -> None:
        for node_id in placement.whole_nodes:
            node = self.nodes[node_id]
            if take and not node.whole:
                raise ValueError(f"node {node_id} is not free")
            self._index(node, add=False)
            node.units = [0 if take else FULL_UNITS] * node.size
            node.free = 0 if take else (1 << node.size) - 1
            self._index(node, add=True)
        by_node: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
        for node_id, position, first, count in placement.gpus:
            by_node[node_id].append((position, first, count))
        for node_id, gpus in by_node.items():
            node = self.nodes[node_id]
            self._index(node, add=False)
            for position, first, count in gpus:
                mask = ((1 << count) - 1) << first
                if take:
                    if node.units[position] & mask != mask:
                        raise ValueError(f"node {node_id} GPU {position} is not free")
                    node.units[position] &= ~mask
                else:
                    node.units[position] |= mask
                if node.units[position] == FULL_UNITS:
                    node.free |= 1 << position
                else:
                    node.free &= ~(1 << position)
            self._index(node, add=True)

    # --- decisions -----------------------------------------------------------------------------

    def place(self, request: Request) -> Placement | None:
        if request.count < 1:
            raise ValueError("count must be at least 1")
        if request.shape == "node":
            return self._place_nodes(request)
        if request.shape == "gpu":
            return self._place_gpus(request)
        if request.shape == "slice":
            return self._place_slice(request)
        raise ValueError(f"unknown shape {request.shape!r}")

    def _whole_gpus(self, node_ids, level: str) -> Placement:
        return Placement(whole_nodes=tuple(node_ids), level=level)

    def _place_nodes(self, request: Request) -> Placement | None:
        index = self.whole.get(request.model)
        if index is None:
            return None
        if request.site:
            index = self._within(index, index[len(LEVELS) - 1].get(request.site, set()))
        if request.bmc:
            index = self._within(index, self.with_bmc)
        widest = TOPOLOGIES[request.topology]
        levels = range(len(LEVELS)) if not request.required else range(widest + 1)
        for level in levels:
            fitting = [
                (len(ids), domain)
                for domain, ids in index[level].items()
                if len(ids) >= request.count
            ]
            if fitting:
                _, domain = min(fitting)
                ids = index[level][domain]
                chosen = self._take_packed(request.model, ids, level, request.count)
                return self._whole_gpus(chosen, LEVELS[level])
        if request.required and widest < len(LEVELS) - 1:
            return None
        # Spanning sites ("any", or a preference that cannot be met): the fullest sites first.
        sites = sorted(index[len(LEVELS) - 1].items(), key=lambda item: len(item[1]))
        if sum(len(ids) for _, ids in sites) < request.count:
            return None
        chosen: list[int] = []
        for _, ids in sites:
            missing = request.count - len(chosen)
            chosen += self._take_packed(request.model, ids, len(LEVELS) - 1, missing)
            if len(chosen) == request.count:
                break
        return self._whole_gpus(chosen, "global")

    def _within(self, index: list[dict[str, set[int]]], allowed: set[int]) -> list[dict]:
        """The whole-node index of one model cut to the `allowed` nodes (a copy: the
        snapshot's own indexes stay whole)."""
        return [
            {domain: ids & allowed for domain, ids in by_domain.items() if ids & allowed}
            for by_domain in index
        ]

    def free_nodes_at(self, model: str, site: str) -> int:
        """Completely free nodes of `model` at `site`."""
        return len(self.whole[model][len(LEVELS) - 1].get(site, ()))

    def place_within(
        self, model: str, count: int, level: int, domain: str, *, bmc: bool = False
    ) -> Placement | None:
        """`count` whole nodes inside one topology domain (to grow an allocation in place);
        with `bmc`, only nodes with a BMC."""
        ids = self.whole.get(model, [{}] * len(LEVELS))[level].get(domain, set())
        if bmc:
            ids = ids & self.with_bmc
        if len(ids) < count:
            return None
        return self._whole_gpus(self._take_packed(model, ids, level, count), LEVELS[level])

    def _take_packed(self, model: str, ids: set[int], level: int, count: int) -> list[int]:
        """`count` nodes of the domain `ids`, from its fullest leaves first."""
        if level == 0 or count >= len(ids):
            return sorted(ids)[:count]
        leaves = self.whole[model][0]
        nodes = self.nodes
        names = {nodes[node_id].domains[0] for node_id in ids}
        chosen: list[int] = []
        for leaf in sorted(names, key=lambda name: (len(leaves[name]), name)):
            chosen += sorted(leaves[leaf])[: count - len(chosen)]
            if len(chosen) == count:
                break
        return chosen

    def _place_gpus(self, request: Request) -> Placement | None:
        """k GPUs: on the busiest node that holds them all; when no node can, gathered from
        the busiest nodes first (all or nothing)."""
        buckets = self.by_free.get(request.model)
        if buckets is None:
            return None
        sizes = sorted(k for k, ids in buckets.items() if ids)
        for free in (k for k in sizes if k >= request.count):
            node = self.nodes[min(buckets[free])]
            positions = [p for p in range(node.size) if node.free >> p & 1][: request.count]
            return Placement(gpus=tuple((node.id, p, 0, SLICE_UNITS) for p in positions))
        if self._free_total[request.model] < request.count:
            return None
        gpus: list[tuple[int, int, int, int]] = []
        for free in sizes:
            for node_id in sorted(buckets[free]):
                node = self.nodes[node_id]
                positions = [p for p in range(node.size) if node.free >> p & 1]
                gpus += [(node_id, p, 0, SLICE_UNITS) for p in positions][
                    : request.count - len(gpus)
                ]
                if len(gpus) == request.count:
                    return Placement(gpus=tuple(gpus), level="global")
        return None

    def _place_slice(self, request: Request) -> Placement | None:
        size = PROFILES[request.profile]
        sliced = self.sliced.get(request.model, {})
        # A GPU already carved up, with the least room that fits; else a fresh MIG GPU.
        for room in sorted(k for k, gpus in sliced.items() if gpus and k >= size):
            for node_id, position in sorted(sliced[room]):
                first = _aligned_offset(self.nodes[node_id].units[position], size)
                if first is not None:
                    return Placement(gpus=((node_id, position, first, size),), level="gpu")
        buckets = self.by_free.get(request.model, {})
        for free in sorted(k for k, ids in buckets.items() if ids):
            for node_id in sorted(buckets[free]):
                node = self.nodes[node_id]
                if node.mig:
                    position = (node.free & -node.free).bit_length() - 1
                    return Placement(gpus=((node_id, position, 0, size),), level="gpu")
        return None

    # --- measures ------------------------------------------------------------------------------

    def free_gpus(self, model: str | None = None) -> int:
        """GPUs with every slice free."""
        if model is None:
            return sum(self._free_total.values())
        return self._free_total[model]

    def free_nodes(self, model: str) -> int:
        return sum(len(ids) for ids in self.whole[model][len(LEVELS) - 1].values())

    def free_bmc_nodes(self, model: str, site: str = "") -> int:
        """Completely free nodes of `model` with a BMC (at `site`, or anywhere)."""
        by_site = self.whole[model][len(LEVELS) - 1]
        ids = by_site.get(site, set()) if site else set().union(*by_site.values())
        return len(ids & self.with_bmc)

    def fragmentation(self) -> float:
        """Share of free GPUs stranded on partly used nodes (0 = all free capacity is whole
        nodes; 1 = none is)."""
        free = self.free_gpus()
        stranded = sum(n.free_count for n in self.nodes.values() if not n.whole)
        return stranded / free if free else 0.0


def _aligned_offset(units: int, size: int) -> int | None:
    """The lowest offset, a multiple of `size` (MIG's placement rule), where `size` units are
    free."""
    mask = (1 << size) - 1
    step = size if size in (1, 2, 4) else (4 if size == 3 else SLICE_UNITS)
    for first in range(0, SLICE_UNITS - size + 1, step):
        if units >> first & mask == mask:
            return first
    return None
