import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from portal import realtime
from portal.models import Job, JobEvent
from portal.models.jobs import JobState
from portal.services import jobs as services
from portal.states import TransitionError, job_transition
from tests.portal.factories import JobFactory, member

pytestmark = pytest.mark.django_db


def test_given_a_member_when_starting_a_job_then_it_is_queued_and_the_task_sent_on_commit(
    django_capture_on_commit_callbacks,
):
    user = member()
    organization = user.memberships.get().organization
    with django_capture_on_commit_callbacks() as callbacks:
        job = services.job_start(user=user, organization=organization, kind=Job.Kind.SELF_CHECK)
    assert job.state == JobState.QUEUED
    assert len(callbacks) == 1  # the Celery task, queued only once the row is committed


def test_given_a_finished_job_when_moved_back_to_running_then_the_transition_is_refused():
    job = JobFactory(state=JobState.SUCCEEDED)
    with pytest.raises(TransitionError):
        job_transition(job=job, to=JobState.RUNNING, actor="test")
    assert not JobEvent.objects.filter(job=job).exists()


def test_given_a_queued_job_when_the_self_check_runs_then_each_transition_writes_an_event():
    job = JobFactory()
    services.job_self_check_run(job_id=job.pk, actor="test", step_seconds=0)
    job.refresh_from_db()
    assert (job.state, job.progress, job.message) == (JobState.SUCCEEDED, 100, "Done")
    moves = list(job.events.values_list("from_state", "to_state", "actor"))
    assert moves == [
        (JobState.QUEUED, JobState.RUNNING, "test"),
        (JobState.RUNNING, JobState.SUCCEEDED, "test"),
    ]


def test_given_a_finished_job_when_its_task_is_delivered_again_then_nothing_changes():
    job = JobFactory()
    services.job_self_check_run(job_id=job.pk, actor="test", step_seconds=0)
    services.job_self_check_run(job_id=job.pk, actor="test", step_seconds=0)
    assert job.events.count() == 2


def test_given_a_failing_step_when_the_self_check_runs_then_the_job_fails_with_the_reason(
    monkeypatch,
):
    def broken() -> None:
        raise ConnectionError("redis is down")

    monkeypatch.setattr(services, "SELF_CHECK_STEPS", [("Pinging Redis", broken)])
    job = JobFactory()
    services.job_self_check_run(job_id=job.pk, actor="test", step_seconds=0)
    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert job.message == "Pinging Redis failed: redis is down"
    assert job.events.last().detail == "Pinging Redis failed: redis is down"


@pytest.mark.django_db(transaction=True)
def test_given_a_listener_on_the_job_group_when_progress_is_recorded_then_the_event_arrives():
    job = JobFactory()
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(realtime.job_group(job.pk), channel)

    services.job_progress_record(job_id=job.pk, progress=40, message="halfway", actor="test")

    message = async_to_sync(layer.receive)(channel)
    assert message["payload"] == {
        "id": job.pk,
        "state": "running",
        "progress": 40,
        "message": "halfway",
    }
