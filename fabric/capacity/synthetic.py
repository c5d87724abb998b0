"""Synthetic fleets for tests and benchmarks: a regular tree of topology domains."""

from __future__ import annotations

from fabric.capacity.engine import NodeCap


def synthetic_fleet(
    *,
    sites: int = 1,
    islands: int = 5,
    groups: int = 4,
    leaves: int = 4,
    nodes_per_leaf: int = 16,
    gpus: int = 8,
    model: str = "H100",
    mig: bool = True,
) -> list[NodeCap]:
    """sites x islands x groups x leaves x nodes_per_leaf nodes of `gpus` GPUs each. The
    defaults give 1,280 nodes / 10,240 GPUs over four topology levels."""
    nodes, gpu_id = [], 0
    for s in range(sites):
        for i in range(islands):
            for g in range(groups):
                for leaf in range(leaves):
                    for _ in range(nodes_per_leaf):
                        ids = tuple(range(gpu_id, gpu_id + gpus))
                        gpu_id += gpus
                        domains = (
                            f"s{s}-i{i}-g{g}-l{leaf}",
                            f"s{s}-i{i}-g{g}",
                            f"s{s}-i{i}",
                            f"s{s}",
                        )
                        nodes.append(NodeCap(len(nodes) + 1, model, ids, domains, mig=mig))
    return nodes
