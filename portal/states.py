"""Lifecycles as transition tables: one function moves an object and writes its event row."""

from django.core.exceptions import ValidationError

from portal.models import Job, JobEvent
from portal.models.jobs import JobState

JOB_TRANSITIONS: dict[str, set[str]] = {
    JobState.QUEUED: {JobState.RUNNING, JobState.FAILED},
    JobState.RUNNING: {JobState.SUCCEEDED, JobState.FAILED},
    JobState.SUCCEEDED: set(),
    JobState.FAILED: set(),
}


class TransitionError(ValidationError):
    pass


def job_transition(*, job: Job, to: str, actor: str, detail: str = "") -> JobEvent:
    """Move `job` (locked by the caller) to state `to` and record the event."""
    if to not in JOB_TRANSITIONS[job.state]:
        raise TransitionError(f"job {job.pk} cannot go from {job.state} to {to}")
    event = JobEvent.objects.create(
        job=job, from_state=job.state, to_state=to, actor=actor, detail=detail[:200]
    )
    job.state = to
    job.save(update_fields=["state", "updated_at"])
    return event
