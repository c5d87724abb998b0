"""The order lifecycle as a transition table (../shared/DESIGN.md): each working step leads to
the next; failed and cancelled are reachable from any step, and both are followed by
compensation (capacity, network and power given back, nothing charged before ready)."""

import itertools

from catalog.models import Order, OrderEvent, OrderState
from portal.states import TransitionError, transition

__all__ = ["BEFORE_READY", "ORDER_TRANSITIONS", "TERMINAL", "TransitionError", "order_transition"]

S = OrderState
_NEXT = [
    S.PLACED, S.AUTHORIZED, S.QUEUED, S.ALLOCATING, S.NETWORKING, S.POWERING, S.LAUNCHING,
    S.READY, S.ACTIVE, S.STOPPING, S.TERMINATED,
]  # fmt: skip
TERMINAL = (S.TERMINATED, S.FAILED, S.CANCELLED)
ORDER_TRANSITIONS: dict[str, set[str]] = {state: set() for state in S.values}
for _here, _there in itertools.pairwise(_NEXT):
    ORDER_TRANSITIONS[_here].add(_there)
for _state in _NEXT[:-1]:
    ORDER_TRANSITIONS[_state].add(S.FAILED)
for _state in _NEXT[: _NEXT.index(S.READY)]:
    ORDER_TRANSITIONS[_state].add(S.CANCELLED)  # given up before it was ready: never charged
ORDER_TRANSITIONS[S.READY].add(S.STOPPING)
# Offerings without a network or power step (notebooks) launch straight after allocating.
ORDER_TRANSITIONS[S.ALLOCATING].add(S.LAUNCHING)
# A stop or a failure before ready is compensated by the same teardown as a terminate.
BEFORE_READY = tuple(_NEXT[: _NEXT.index(S.READY)])


def order_transition(*, order: Order, to: str, actor: str, detail: str = "") -> OrderEvent:
    return transition(
        order, to=to, table=ORDER_TRANSITIONS, event_model=OrderEvent, actor=actor, detail=detail
    )
