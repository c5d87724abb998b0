"""Fill an engine snapshot from the database: the eligible nodes of a GPU model, their topology
(from cabling), and the bookings that overlap a window."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connection
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange

from fabric.capacity.engine import FULL_UNITS, SLICE_UNITS, NodeCap, Placement, Snapshot
from fabric.models import GPU, CableEnd, GpuBooking, NetworkInterface, Node, NodeState


def window(start: datetime, end: datetime | None) -> DateTimeTZRange:
    return DateTimeTZRange(start, end, "[)")


def _leaves(node_ids: list[int]) -> dict[int, str]:
    """Each node's leaf: the switch at the far end of its first cabled NIC (InfiniBand rail 0
    first). Three index lookups rather than one deep join, so the plan stays cheap."""
    first_nic: dict[int, int] = {}
    for nic_id, node_id in (
        NetworkInterface.objects.filter(node_id__in=node_ids, cable_end__isnull=False)
        .order_by("node_id", "-kind", "rail", "name")
        .values_list("id", "node_id")
    ):
        first_nic.setdefault(node_id, nic_id)
    cable_of = dict(
        CableEnd.objects.filter(interface_id__in=first_nic.values()).values_list(
            "interface_id", "cable_id"
        )
    )
    switch_of = dict(
        CableEnd.objects.filter(cable_id__in=cable_of.values(), port__isnull=False).values_list(
            "cable_id", "port__switch__name"
        )
    )
    return {
        node_id: switch_of[cable_of[nic_id]]
        for node_id, nic_id in first_nic.items()
        if cable_of.get(nic_id) in switch_of
    }


class CapacitySource:
    """The eligible nodes of a GPU model, their topology (from cabling) and the bookings over a
    span, loaded in a handful of queries; `at()` gives the free capacity of any window inside it."""

    def __init__(
        self,
        *,
        gpu_model: str,
        start: datetime,
        end: datetime | None,
        states: tuple[str, ...] = (NodeState.AVAILABLE,),
    ):
        self.gpu_model = gpu_model
        self.nodes = list(
            Node.objects.filter(gpu_model=gpu_model, state__in=states).values_list(
                "id", "site__name", "rack__pod__name", "bmc__id"
            )
        )
        self.node_ids = [n[0] for n in self.nodes]
        self.leaves = _leaves(self.node_ids)
        self.gpus: dict[int, list[tuple[int, bool]]] = defaultdict(list)
        for gpu_id, node_id, mig in (
            GPU.objects.filter(node_id__in=self.node_ids)
            .order_by("node_id", "index")
            .values_list("id", "node_id", "mig_capable")
        ):
            self.gpus[node_id].append((gpu_id, mig))
        # What at() needs of each node that no booking changes, worked out once.
        self.shapes: list[tuple[int, tuple[int, ...], tuple[str, str, str, str], bool, bool]] = []
        for node_id, site, pod, bmc in self.nodes:
            node_gpus = self.gpus.get(node_id)
            if node_gpus:
                leaf = self.leaves.get(node_id) or f"{site}/{pod or '-'}/{node_id}"
                self.shapes.append(
                    (
                        node_id,
                        tuple(g for g, _ in node_gpus),
                        (leaf, f"{site}/{pod or '-'}", site, site),
                        all(m for _, m in node_gpus),
                        bmc is not None,
                    )
                )
        self.load_bookings(start, end)

    def load_bookings(self, start: datetime, end: datetime | None) -> None:
        """The bookings over [start, end), and the newest booking id then (the one after it is
        where `add_bookings_after` goes on)."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT COALESCE(MAX(id), 0) FROM fabric_gpubooking")
            self.last_booking = cursor.fetchone()[0]
        # booking id -> (GPU id, slice units taken as a bitmask, period start, period end)
        self.bookings: dict[int, tuple[int, int, datetime, datetime | None]] = {}
        for row in GpuBooking.objects.filter(
            node_id__in=self.node_ids, period__overlap=window(start, end)
        ).values_list("id", "gpu_id", "units", "period"):
            self.put_booking(*row)

    def add_bookings_after(self, last: int) -> None:
        """Bookings of these nodes made after booking `last` (ids only grow)."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, gpu_id, units, period FROM fabric_gpubooking"
                " WHERE id > %s AND node_id = ANY(%s)",
                [last, self.node_ids],
            )
            for row in cursor.fetchall():
                self.put_booking(*row)

    def put_booking(self, booking_id: int, gpu_id: int, units, period) -> None:
        mask = ((1 << (units.upper - units.lower)) - 1) << units.lower
        self.bookings[booking_id] = (gpu_id, mask, period.lower, period.upper)
        self.last_booking = max(self.last_booking, booking_id)

    def at(self, start: datetime, end: datetime | None) -> Snapshot:
        booked: dict[int, int] = defaultdict(int)  # gpu id -> units taken
        for gpu_id, mask, lower, upper in self.bookings.values():
            if (end is None or lower < end) and (upper is None or upper > start):
                booked[gpu_id] |= mask
        caps = []
        model = self.gpu_model
        for node_id, gpu_ids, domains, mig, bmc in self.shapes:
            if not any(gpu_id in booked for gpu_id in gpu_ids):
                caps.append(
                    NodeCap(
                        id=node_id,
                        model=model,
                        gpu_ids=gpu_ids,
                        domains=domains,
                        mig=mig,
                        bmc=bmc,
                    )
                )
                continue
            units = [FULL_UNITS & ~booked.get(gpu_id, 0) for gpu_id in gpu_ids]
            caps.append(
                NodeCap(
                    id=node_id,
                    model=model,
                    gpu_ids=gpu_ids,
                    domains=domains,
                    mig=mig,
                    bmc=bmc,
                    free=sum(1 << p for p, u in enumerate(units) if u == FULL_UNITS),
                    units=units,
                )
            )
        return Snapshot(caps)


# --- the per-process cache -------------------------------------------------------------------
#
# Placing one GPU used to load every eligible node, its cabling, GPUs and bookings (six queries,
# thousands of rows) while holding the model's lock. Each process now keeps that source between
# requests and brings it up to date under the lock with one query: the nodes' version (count,
# latest change) and the newest booking id; only bookings made since are read. What it does not
# see at once (GPUs or cabling changed without a node change, bookings ended or moved by
# another process) is either pessimistic (it thinks something is taken that is free) or caught
# by the exclusion constraint; the caller reloads on a conflict or before it answers "does not
# fit", and everything is reloaded after TOPOLOGY_SECONDS and BOOKINGS_SECONDS anyway.

TOPOLOGY_SECONDS = 60.0
BOOKINGS_SECONDS = 10.0


@dataclass
class _Cached:
    source: CapacitySource
    version: tuple
    horizon: datetime  # every booking overlapping [horizon, forever) is in the source
    topology_at: float
    bookings_at: float


_cached: dict[tuple, _Cached] = {}
_cached_lock = threading.Lock()


def _key(gpu_model: str, states: tuple[str, ...]) -> tuple:
    return (connection.alias, connection.settings_dict["NAME"], gpu_model, tuple(states))


def capacity_source(
    *,
    gpu_model: str,
    start: datetime,
    states: tuple[str, ...] = (NodeState.AVAILABLE,),
    fresh: bool = False,
) -> tuple[CapacitySource, bool]:
    """This process's source for `gpu_model`, up to date as far as one cheap query tells, for
    windows starting at `start` or later. Call it holding the model's lock (every booking is
    written under it). Returns (source, whether it was loaded in full just now); `fresh`
    forces the full load."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), max(updated_at), (SELECT max(id) FROM fabric_gpubooking)"
            " FROM fabric_node WHERE gpu_model = %s",
            [gpu_model],
        )
        count, changed, last_booking = cursor.fetchone()
    version, key, now = (count, changed), _key(gpu_model, states), time.monotonic()
    with _cached_lock:
        entry = _cached.get(key)
        if (
            fresh
            or entry is None
            or entry.version != version
            or now - entry.topology_at > TOPOLOGY_SECONDS
        ):
            source = CapacitySource(gpu_model=gpu_model, start=start, end=None, states=states)
            _cached[key] = _Cached(source, version, start, now, now)
            return source, True
        source = entry.source
        if start < entry.horizon or now - entry.bookings_at > BOOKINGS_SECONDS:
            source.load_bookings(start, None)
            entry.horizon, entry.bookings_at = start, now
            return source, True
        if (last_booking or 0) > source.last_booking:
            source.add_bookings_after(source.last_booking)
        return source, False


def capacity_forget(*, gpu_model: str) -> None:
    """Drop what this process holds of `gpu_model` (after a conflict: someone else booked)."""
    with _cached_lock:
        for key in [k for k in _cached if k[2] == gpu_model]:
            del _cached[key]


def capacity_booked(*, gpu_model: str, rows: list[tuple[int, int, object, object]]) -> None:
    """Bookings this process just wrote (id, GPU id, units, period), before others see them."""
    with _cached_lock:
        for key, entry in _cached.items():
            if key[2] == gpu_model:
                for row in rows:
                    entry.source.put_booking(*row)


def capacity_unbooked(
    *, gpu_model: str, ended: list[tuple[int, datetime]], deleted: list[int]
) -> None:
    """Bookings this process just ended (id, new end) or deleted. One that has ended by now is
    dropped (and windows before its end need a reload), so the source stays small."""
    wall = datetime.now(UTC)
    with _cached_lock:
        for key, entry in _cached.items():
            if key[2] != gpu_model:
                continue
            bookings = entry.source.bookings
            for booking_id, end in ended:
                if booking_id not in bookings:
                    continue
                gpu_id, mask, lower, _ = bookings[booking_id]
                if end <= wall:
                    del bookings[booking_id]
                    entry.horizon = max(entry.horizon, end)
                else:
                    bookings[booking_id] = (gpu_id, mask, lower, end)
            for booking_id in deleted:
                bookings.pop(booking_id, None)


def load_snapshot(
    *,
    gpu_model: str,
    start: datetime,
    end: datetime | None,
    states: tuple[str, ...] = (NodeState.AVAILABLE,),
) -> Snapshot:
    """Free capacity of `gpu_model` over [start, end) on nodes in `states`."""
    return CapacitySource(gpu_model=gpu_model, start=start, end=end, states=states).at(start, end)


def booking_rows(snapshot: Snapshot, placement: Placement) -> list[tuple[int, int, int, int]]:
    """(node id, GPU id, first unit, unit count) for each GPU the placement takes."""
    rows = [
        (node_id, gpu_id, 0, SLICE_UNITS)
        for node_id in placement.whole_nodes
        for gpu_id in snapshot.nodes[node_id].gpu_ids
    ]
    rows += [
        (node_id, snapshot.nodes[node_id].gpu_ids[position], first, count)
        for node_id, position, first, count in placement.gpus
    ]
    return rows
