"""The node (Ironic/MAAS vocabulary) and allocation lifecycles as transition tables."""

from fabric.models import Allocation, AllocationEvent, AllocationState, Node, NodeEvent, NodeState
from portal.states import TransitionError, transition

__all__ = ["TransitionError", "allocation_transition", "node_transition"]

S = NodeState
NODE_TRANSITIONS: dict[str, set[str]] = {
    S.ENROLLED: {S.BURN_IN},
    S.BURN_IN: {S.AVAILABLE},
    S.AVAILABLE: {S.ALLOCATED, S.SPARE, S.CORDONED},
    S.SPARE: {S.AVAILABLE},
    S.ALLOCATED: {S.AVAILABLE, S.DRAINING},
    S.DRAINING: {S.MAINTENANCE},
    S.CORDONED: {S.MAINTENANCE, S.AVAILABLE},
    S.MAINTENANCE: {S.BURN_IN},
    S.SUSPECT: {S.QUARANTINED},
    S.QUARANTINED: {S.REPAIR},
    S.REPAIR: {S.BURN_IN},
}
# Any node can become suspect (a failed health check), except one already on the repair path.
for _state in NODE_TRANSITIONS:
    if _state not in (S.SUSPECT, S.QUARANTINED, S.REPAIR):
        NODE_TRANSITIONS[_state].add(S.SUSPECT)


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
        allocation, to=to, table=ALLOCATION_TRANSITIONS, event_model=AllocationEvent,
        actor=actor, detail=detail,
    )  # fmt: skip
