"""The one transition helper and the one event model every lifecycle shares."""

import pytest

from catalog.models import OrderEvent
from fabric.models import AllocationEvent, NodeEvent
from portal.models import JobEvent, TransitionEvent
from portal.models.jobs import JobState
from portal.states import JOB_TRANSITIONS, TransitionError, job_transition, transition
from tests.portal.factories import JobFactory

pytestmark = pytest.mark.django_db

EVENT_MODELS = [OrderEvent, NodeEvent, AllocationEvent, JobEvent]


@pytest.mark.parametrize("event_model", EVENT_MODELS, ids=lambda m: m.__name__)
def test_every_lifecycle_event_is_a_transition_event_keeping_300_characters_of_detail(
    event_model,
):
    assert issubclass(event_model, TransitionEvent)
    assert event_model._meta.get_field("detail").max_length == 300
    assert event_model._meta.ordering == ["created_at", "pk"]


def test_a_detail_longer_than_the_column_is_cut_at_300_characters_not_200():
    job = JobFactory()
    event = job_transition(job=job, to=JobState.RUNNING, actor="test", detail="x" * 400)
    event.refresh_from_db()
    assert len(event.detail) == 300
    assert str(event) == f"job {job.pk}: queued -> running"


def test_a_lifecycle_without_an_event_model_moves_along_its_table_and_writes_no_event():
    job = JobFactory()
    event = transition(
        job, to=JobState.RUNNING, table=JOB_TRANSITIONS, event_model=None, actor="test"
    )
    assert event is None
    job.refresh_from_db()
    assert job.state == JobState.RUNNING
    assert not JobEvent.objects.filter(job=job).exists()


def test_a_lifecycle_without_an_event_model_is_still_held_to_its_table():
    job = JobFactory(state=JobState.FAILED)
    with pytest.raises(TransitionError):
        transition(job, to=JobState.RUNNING, table=JOB_TRANSITIONS, event_model=None, actor="test")
    job.refresh_from_db()
    assert job.state == JobState.FAILED
