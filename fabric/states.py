"""The node (Ironic/MAAS vocabulary), allocation, reservation and tenant network lifecycles as
transition tables."""

from fabric.models import (
    Allocation,
    AllocationEvent,
    AllocationState,
    Node,
    NodeEvent,
    NodeState,
    Reservation,
    TenantNetwork,
)
from portal.states import TransitionError, transition

__all__ = [
    "TransitionError",
    "allocation_transition",
    "network_transition",
    "node_transition",
    "reservation_transition",
]

S = NodeState
# Any node can become suspect (a failed health check), except one already on the repair path.
# A node a tenant held is cleaned (its disks erased, like Ironic's automated cleaning) before it
# is placeable again: allocated -> cleaning -> available, or maintenance when cleaning failed;
# never allocated -> available.
NODE_TRANSITIONS: dict[str, set[str]] = {
    S.ENROLLED: {S.BURN_IN, S.SUSPECT},
    S.BURN_IN: {S.AVAILABLE, S.SUSPECT},
    S.AVAILABLE: {S.ALLOCATED, S.SPARE, S.CORDONED, S.SUSPECT},
    S.SPARE: {S.AVAILABLE, S.SUSPECT},
    S.ALLOCATED: {S.CLEANING, S.DRAINING, S.SUSPECT},
    S.CLEANING: {S.AVAILABLE, S.MAINTENANCE},
    S.DRAINING: {S.MAINTENANCE, S.SUSPECT},
    S.CORDONED: {S.MAINTENANCE, S.AVAILABLE, S.SUSPECT},
    S.MAINTENANCE: {S.BURN_IN, S.SUSPECT},
    S.SUSPECT: {S.QUARANTINED},
    S.QUARANTINED: {S.REPAIR},
    S.REPAIR: {S.BURN_IN},
}


def node_transition(*, node: Node, to: str, actor: str, detail: str = "") -> NodeEvent:
    return transition(
        node, to=to, table=NODE_TRANSITIONS, event_model=NodeEvent, actor=actor, detail=detail
    )


# --- allocations (leases) -------------------------------------------------------------------

A = AllocationState
ALLOCATION_TRANSITIONS: dict[str, set[str]] = {
    A.REQUESTED: {A.PLACED, A.QUEUED, A.FAILED, A.CANCELLED},
    A.QUEUED: {A.PLACED, A.CANCELLED, A.FAILED},
    A.PLACED: {A.ACTIVE, A.RELEASED, A.CANCELLED, A.FAILED},
    A.ACTIVE: {A.EXPIRING, A.RECLAIMING, A.PREEMPTED, A.SWAPPING, A.FAILED},
    A.EXPIRING: {A.ACTIVE, A.RECLAIMING, A.FAILED},
    A.SWAPPING: {A.ACTIVE, A.FAILED},
    A.RECLAIMING: {A.RELEASED},
    A.PREEMPTED: {A.RELEASED},
    A.RELEASED: set(),
    A.FAILED: set(),
    A.CANCELLED: set(),
}
HOLDING = (A.PLACED, A.ACTIVE, A.EXPIRING, A.SWAPPING, A.RECLAIMING)


def allocation_transition(
    *, allocation: Allocation, to: str, actor: str, detail: str = ""
) -> AllocationEvent:
    return transition(
        allocation,
        to=to,
        table=ALLOCATION_TRANSITIONS,
        event_model=AllocationEvent,
        actor=actor,
        detail=detail,
    )


# --- reservations and tenant networks (no event model: the table is checked, no row written) ---

R = Reservation.State
RESERVATION_TRANSITIONS: dict[str, set[str]] = {
    R.CONFIRMED: {R.CANCELLED},
    R.CANCELLED: set(),
}


def reservation_transition(*, reservation: Reservation, to: str, actor: str) -> None:
    transition(reservation, to=to, table=RESERVATION_TRANSITIONS, event_model=None, actor=actor)


N = TenantNetwork.State
NETWORK_TRANSITIONS: dict[str, set[str]] = {
    N.ACTIVE: {N.DELETED},
    N.DELETED: set(),
}


def network_transition(*, network: TenantNetwork, to: str, actor: str) -> None:
    transition(network, to=to, table=NETWORK_TRANSITIONS, event_model=None, actor=actor)
