"""The offerings' recipes and the order steps' lifecycle, read as the rules they state."""

import pytest

from catalog.models import OrderState, OrderStep
from catalog.offerings import offering_for
from catalog.states import STEP_TRANSITIONS, TransitionError, step_transition

S, St = OrderState, OrderStep.State
KINDS = ["bare_metal", "notebook"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_working_state_of_an_offerings_steps_has_a_method_in_its_recipe(kind):
    offering = offering_for(kind)
    covered = {state for step in offering.steps for state in step.states} - {S.PLACED}
    assert set(offering.recipe) == covered
    assert all(callable(getattr(offering, name)) for name in offering.recipe.values())


def test_every_step_state_has_a_row_and_an_ended_step_stays_as_it_ended():
    assert set(STEP_TRANSITIONS) == set(St.values)
    assert all(STEP_TRANSITIONS[state] == set() for state in (St.DONE, St.FAILED, St.SKIPPED))


def test_a_step_the_order_moves_past_is_done_whether_or_not_it_ran():
    for start in (St.PENDING, St.RUNNING):
        step = OrderStep(key="authorize", state=start)
        step_transition(step=step, to=St.DONE)
        assert step.state == St.DONE


def test_a_done_step_does_not_run_again():
    step = OrderStep(key="power", state=St.DONE)
    with pytest.raises(TransitionError, match="cannot go from done to running"):
        step_transition(step=step, to=St.RUNNING)
    assert step.state == St.DONE
