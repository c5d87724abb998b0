"""The order lifecycle as a transition table (../shared/DESIGN.md): each working step leads to
the next; failed and cancelled are reachable from any step, and both are followed by
compensation (capacity, network and power given back, nothing charged before ready)."""

from django.db.models import QuerySet

from catalog.models import Order, OrderEvent, OrderState, OrderStep
from portal.states import TransitionError, transition

__all__ = [
    "BEFORE_READY",
    "ORDER_TRANSITIONS",
    "STEP_TRANSITIONS",
    "TERMINAL",
    "TransitionError",
    "order_transition",
    "step_transition",
    "steps_transition",
]

S = OrderState
TERMINAL = (S.TERMINATED, S.FAILED, S.CANCELLED)
ORDER_TRANSITIONS: dict[str, set[str]] = {
    # Given up before it was ready (cancelled): never charged.
    S.PLACED: {S.AUTHORIZED, S.FAILED, S.CANCELLED},
    S.AUTHORIZED: {S.QUEUED, S.FAILED, S.CANCELLED},
    S.QUEUED: {S.ALLOCATING, S.FAILED, S.CANCELLED},
    # Offerings without a network or power step (notebooks) launch straight after allocating.
    S.ALLOCATING: {S.NETWORKING, S.LAUNCHING, S.FAILED, S.CANCELLED},
    S.NETWORKING: {S.POWERING, S.FAILED, S.CANCELLED},
    S.POWERING: {S.LAUNCHING, S.FAILED, S.CANCELLED},
    S.LAUNCHING: {S.READY, S.FAILED, S.CANCELLED},
    S.READY: {S.ACTIVE, S.STOPPING, S.FAILED},
    S.ACTIVE: {S.STOPPING, S.FAILED},
    S.STOPPING: {S.TERMINATED, S.FAILED},
    S.TERMINATED: set(),
    S.FAILED: set(),
    S.CANCELLED: set(),
}
# A stop or a failure before ready is compensated by the same teardown as a terminate.
BEFORE_READY = (
    S.PLACED,
    S.AUTHORIZED,
    S.QUEUED,
    S.ALLOCATING,
    S.NETWORKING,
    S.POWERING,
    S.LAUNCHING,
)


def order_transition(*, order: Order, to: str, actor: str, detail: str = "") -> OrderEvent:
    return transition(
        order, to=to, table=ORDER_TRANSITIONS, event_model=OrderEvent, actor=actor, detail=detail
    )


# The steps of an order's recipe as the tenant sees them (OrderStep). A step the order moves
# past is done, whether or not it ran on its own (authorization has no running phase); when
# the order fails, its current step fails and the steps not begun are skipped; when it stops
# before handover, what is left is skipped. A step that ended stays as it ended.
St = OrderStep.State
STEP_TRANSITIONS: dict[str, set[str]] = {
    St.PENDING: {St.RUNNING, St.DONE, St.FAILED, St.SKIPPED},
    St.RUNNING: {St.DONE, St.FAILED, St.SKIPPED},
    St.DONE: set(),
    St.FAILED: set(),
    St.SKIPPED: set(),
}


def step_transition(*, step: OrderStep, to: str) -> None:
    """Move `step` (locked by the caller) along STEP_TRANSITIONS; the caller saves it with the
    fields that change with it (progress, times, detail). Steps write no event rows: the
    order's own events say when it moved."""
    if to not in STEP_TRANSITIONS[step.state]:
        raise TransitionError(f"order step {step} cannot go from {step.state} to {to}")
    step.state = to


def steps_transition(*, steps: QuerySet[OrderStep], to: str, **fields) -> int:
    """Move those of `steps` that may go to `to` (the others keep their state), with `fields`,
    in one UPDATE. Returns how many moved."""
    sources = [state for state, targets in STEP_TRANSITIONS.items() if to in targets]
    return steps.filter(state__in=sources).update(state=to, **fields)
