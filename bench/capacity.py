"""Placement decisions on a synthetic 10,240-GPU fleet (1,280 nodes of 8 GPUs under four
topology levels) held at ~85 % full: decisions per second and p99 latency for 1-GPU, 1-node and
64-node gang requests, and fragmentation after 10,000 mixed requests. The same request stream
runs through a naive first-fit baseline in the same process.

    .venv/bin/python bench/capacity.py [--requests 10000] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fabric.capacity.engine import (
    LEVELS,
    PROFILES,
    SLICE_UNITS,
    TOPOLOGIES,
    Placement,
    Request,
    Snapshot,
    _aligned_offset,
)
from fabric.capacity.synthetic import synthetic_fleet

TARGET_FULL = 0.85
MIX = [  # (share, kind, request)
    (0.35, "1-gpu", Request("H100", 1, shape="gpu")),
    (0.10, "4-gpu", Request("H100", 4, shape="gpu")),
    (0.10, "MIG 1g slice", Request("H100", 1, shape="slice", profile="1g")),
    (0.30, "1-node", Request("H100", 1, topology="any")),
    (0.10, "4-node same-leaf", Request("H100", 4, topology="same-leaf", required=False)),
    (0.05, "64-node gang", Request("H100", 64, topology="same-ib-island", required=False)),
]


class FirstFit:
    """The naive baseline: no indexes; every decision scans the nodes in a fixed order and takes
    the first that fit (for gangs: the first domain, in order, with enough free nodes)."""

    def __init__(self, nodes):
        self.nodes = nodes
        self.inner = Snapshot(nodes)  # only for booking bookkeeping and the measures

    def place(self, request: Request) -> Placement | None:
        if request.shape == "slice":
            size = PROFILES[request.profile]
            for node in self.nodes:
                for position, units in enumerate(node.units):
                    first = _aligned_offset(units, size)
                    if first is not None:
                        return Placement(gpus=((node.id, position, first, size),), level="gpu")
            return None
        if request.shape == "gpu":
            for node in self.nodes:
                if node.free_count >= request.count:
                    positions = [p for p in range(node.size) if node.free >> p & 1]
                    gpus = tuple((node.id, p, 0, SLICE_UNITS) for p in positions[: request.count])
                    return Placement(gpus=gpus, level="node")
            return None
        widest = TOPOLOGIES[request.topology]
        for level in range(widest + 1 if request.required else len(LEVELS)):
            by_domain = defaultdict(list)
            for node in self.nodes:
                if node.whole:
                    by_domain[node.domains[level]].append(node.id)
            for ids in by_domain.values():
                if len(ids) >= request.count:
                    return self.inner._whole_gpus(ids[: request.count], LEVELS[level])
        return None

    def book(self, placement):
        self.inner.book(placement)

    def release(self, placement):
        self.inner.release(placement)

    def fragmentation(self):
        return self.inner.fragmentation()

    def free_gpus(self):
        return self.inner.free_gpus()


def run(engine, requests: list[tuple[str, Request]], seed: int, total_gpus: int):
    rng = random.Random(seed)
    live: list[Placement] = []
    timings: dict[str, list[float]] = defaultdict(list)
    booking: dict[str, list[float]] = defaultdict(list)
    placed: dict[str, int] = defaultdict(int)
    fragmentation: list[float] = []
    warmup = True
    for n, (kind, request) in enumerate(requests):
        # Hold the fleet near 85 % full: end random leases while above the mark.
        while live and 1 - engine.free_gpus() / total_gpus > TARGET_FULL:
            engine.release(live.pop(rng.randrange(len(live))))
        if warmup and 1 - engine.free_gpus() / total_gpus >= TARGET_FULL - 0.01:
            warmup = False
        started = time.perf_counter()
        placement = engine.place(request)
        decided = time.perf_counter()
        if placement is not None:
            engine.book(placement)
            live.append(placement)
            placed[kind] += 1
        if not warmup:
            timings[kind].append(decided - started)
            booking[kind].append(time.perf_counter() - started)
            if n % 50 == 0:
                fragmentation.append(engine.fragmentation())
    return timings, booking, placed, sum(fragmentation) / len(fragmentation)


def stream(count: int, seed: int) -> list[tuple[str, Request]]:
    rng = random.Random(seed)
    shares = [share for share, _, _ in MIX]
    return [(kind, req) for _, kind, req in rng.choices(MIX, weights=shares, k=count)]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    # The fill-up to 85 % happens inside the stream; timings start once the fleet is that full.
    requests = stream(args.requests + 3_000, args.seed)
    results = {}
    for name, make in (("engine", Snapshot), ("first-fit", FirstFit)):
        fleet = synthetic_fleet()
        total = sum(n.size for n in fleet)
        started = time.perf_counter()
        results[name] = run(make(fleet), requests, args.seed, total)
        print(f"{name}: {len(requests)} requests in {time.perf_counter() - started:.1f}s")

    print(
        "\ndecisions/s and p99 (ms) of choosing the GPUs; '+book' also updates the snapshot\n"
        f"{'request':<18}{'engine/s':>10}{'p99':>8}{'+book/s':>9}{'placed':>8}"
        f"{'first-fit/s':>13}{'p99':>8}{'placed':>8}{'speed-up':>10}"
    )
    for _, kind, _ in MIX:
        cells = []
        for name in ("engine", "first-fit"):
            timings, booked, placed, _ = results[name]
            samples = sorted(timings[kind])
            cells.append(
                (
                    len(samples) / sum(samples),
                    samples[int(0.99 * (len(samples) - 1))] * 1000,
                    len(booked[kind]) / sum(booked[kind]),
                    placed[kind],
                )
            )
        (rate, p99, with_book, placed_e), (base, base_p99, _, placed_b) = cells
        print(
            f"{kind:<18}{rate:>10,.0f}{p99:>8.3f}{with_book:>9,.0f}{placed_e:>8}"
            f"{base:>13,.0f}{base_p99:>8.3f}{placed_b:>8}{rate / base:>9.1f}x"
        )
    frag_engine, frag_naive = results["engine"][3], results["first-fit"][3]
    print(
        "\nfragmentation, mean over the run (share of free GPUs stranded on partly used "
        f"nodes): engine {frag_engine:.3f}, first-fit {frag_naive:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
