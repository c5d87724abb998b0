"""The placement engine on its own: topology, gangs, best fit, slices (no database)."""

import random

import pytest

from fabric.capacity.engine import Request, Snapshot
from fabric.capacity.synthetic import synthetic_fleet


def _snapshot(**kwargs) -> Snapshot:
    defaults = dict(islands=2, groups=2, leaves=2, nodes_per_leaf=4)
    return Snapshot(synthetic_fleet(**{**defaults, **kwargs}))


def _leaves(snapshot, placement):
    return {snapshot.nodes[n].domains[0] for n in placement.node_ids}


def test_a_same_leaf_request_never_spans_leaves_however_the_fleet_is_filled():
    rng = random.Random(7)
    for _ in range(30):
        snapshot = _snapshot()
        for node_id in rng.sample(sorted(snapshot.nodes), 12):  # 12 of 32 nodes busy
            snapshot.book(snapshot._whole_gpus([node_id], "node"))
        placement = snapshot.place(Request("H100", 4, topology="same-leaf"))
        if placement is not None:
            assert len(_leaves(snapshot, placement)) == 1
            assert placement.level == "leaf"


def test_required_topology_fails_cleanly_and_preferred_widens_only_then():
    snapshot = _snapshot()
    for leaf_nodes in ((1, 2), (5, 6), (9, 10), (13, 14), (17, 18), (21, 22), (25, 26), (29, 30)):
        for node_id in leaf_nodes:  # every leaf keeps only 2 free nodes
            snapshot.book(snapshot._whole_gpus([node_id], "node"))
    assert snapshot.place(Request("H100", 4, topology="same-leaf")) is None
    preferred = snapshot.place(Request("H100", 4, topology="same-leaf", required=False))
    assert preferred.level == "group" and len(_leaves(snapshot, preferred)) == 2
    fits = snapshot.place(Request("H100", 2, topology="same-leaf", required=False))
    assert fits.level == "leaf"  # when the leaf fits, the preference holds


def test_best_fit_picks_the_fullest_domain_that_fits():
    snapshot = _snapshot()
    snapshot.book(snapshot._whole_gpus([1, 2, 3], "node"))  # leaf 0 has 1 free node left
    placement = snapshot.place(Request("H100", 1, topology="same-leaf"))
    assert placement.node_ids == [4]


def test_a_gang_is_all_or_nothing():
    snapshot = _snapshot()
    assert snapshot.place(Request("H100", 33)) is None  # 32 nodes in all
    everything = snapshot.place(Request("H100", 32))
    assert len(everything.node_ids) == 32 and everything.level == "site"
    assert snapshot.free_gpus() == 256  # placing books nothing until the caller commits


def test_gpus_go_to_the_busiest_node_that_fits_and_whole_nodes_stay_whole():
    snapshot = _snapshot()
    snapshot.book(snapshot.place(Request("H100", 3, shape="gpu")))
    second = snapshot.place(Request("H100", 2, shape="gpu"))
    snapshot.book(second)
    assert second.node_ids == [1]
    assert snapshot.free_nodes("H100") == 31
    assert snapshot.place(Request("H100", 4, shape="gpu")).node_ids == [2]  # node 1 has 3 left


def test_slices_fill_one_gpu_before_opening_another():
    snapshot = _snapshot()
    placements = []
    for _ in range(7):
        placement = snapshot.place(Request("H100", 1, shape="slice", profile="1g"))
        snapshot.book(placement)
        placements.append(placement)
    assert {p.gpus[0][:2] for p in placements} == {(1, 0)}
    assert sorted(p.gpus[0][2] for p in placements) == list(range(7))
    three = snapshot.place(Request("H100", 1, shape="slice", profile="3g"))
    assert three.gpus[0][1:] == (1, 0, 3)  # the next GPU, aligned at 0


def test_booking_then_releasing_restores_every_index():
    snapshot = _snapshot()
    before = (snapshot.free_gpus(), snapshot.free_nodes("H100"), snapshot.fragmentation())
    booked = [snapshot.place(r) for r in (Request("H100", 4, topology="same-rail-group"),)]
    for placement in booked:
        snapshot.book(placement)
    gpu = snapshot.place(Request("H100", 2, shape="gpu"))
    snapshot.book(gpu)
    sliced = snapshot.place(Request("H100", 1, shape="slice", profile="2g"))
    snapshot.book(sliced)
    assert snapshot.fragmentation() > 0
    for placement in (*booked, gpu, sliced):
        snapshot.release(placement)
    assert (snapshot.free_gpus(), snapshot.free_nodes("H100"), snapshot.fragmentation()) == before
    with pytest.raises(ValueError):
        snapshot.book(gpu)
        snapshot.book(gpu)
