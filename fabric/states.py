"""The node lifecycle (Ironic/MAAS vocabulary) as a transition table."""

from django.core.exceptions import ValidationError

from fabric.models import Allocation, AllocationEvent, AllocationState, Node, NodeEvent, NodeState

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


class TransitionError(ValidationError):
    pass


def node_transition(*, node: Node, to: str, actor: str, detail: str = "") -> NodeEvent:
    """Move `node` (locked by the caller) to `to` and record the event."""
    if to not in NODE_TRANSITIONS[node.state]:
        raise TransitionError(f"node {node.name} cannot go from {node.state} to {to}")
    event = NodeEvent.objects.create(
        node=node, from_state=node.state, to_state=to, actor=actor, detail=detail[:200]
    )
    node.state = to
    node.save(update_fields=["state", "updated_at"])
    return event


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
    """Move `allocation` (locked by the caller) to `to` and record the event."""
    if to not in ALLOCATION_TRANSITIONS[allocation.state]:
        raise TransitionError(
            f"allocation {allocation.pk} cannot go from {allocation.state} to {to}"
        )
    event = AllocationEvent.objects.create(
        allocation=allocation, from_state=allocation.state, to_state=to, actor=actor,
        detail=detail[:300],
    )  # fmt: skip
    allocation.state = to
    allocation.save(update_fields=["state"])
    return event
