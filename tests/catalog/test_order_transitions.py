"""The order lifecycle table, read as the rules it states."""

from catalog.models import OrderState
from catalog.states import BEFORE_READY, ORDER_TRANSITIONS, TERMINAL

S = OrderState
WORKING = [s for s in S.values if s not in TERMINAL]


def test_every_order_state_has_a_row_and_the_terminal_ones_lead_nowhere():
    assert set(ORDER_TRANSITIONS) == set(S.values)
    assert all(ORDER_TRANSITIONS[s] == set() for s in TERMINAL)


def test_any_working_order_can_fail_but_only_one_not_yet_ready_can_be_cancelled():
    assert all(S.FAILED in ORDER_TRANSITIONS[s] for s in WORKING)
    cancellable = {s for s in S.values if S.CANCELLED in ORDER_TRANSITIONS[s]}
    assert cancellable == set(BEFORE_READY)


def test_nothing_goes_back_to_placed_and_ready_is_reached_only_from_launching():
    assert not any(S.PLACED in targets for targets in ORDER_TRANSITIONS.values())
    assert {s for s, targets in ORDER_TRANSITIONS.items() if S.READY in targets} == {S.LAUNCHING}
