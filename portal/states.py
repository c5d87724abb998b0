"""Lifecycles as transition tables: one function moves an object and writes its event row."""

from django.core.exceptions import ValidationError
from django.db import models

from portal.models import Job, JobEvent, TransitionEvent
from portal.models.jobs import JobState

JOB_TRANSITIONS: dict[str, set[str]] = {
    JobState.QUEUED: {JobState.RUNNING, JobState.FAILED},
    JobState.RUNNING: {JobState.SUCCEEDED, JobState.FAILED},
    JobState.SUCCEEDED: set(),
    JobState.FAILED: set(),
}


class TransitionError(ValidationError):
    pass


def transition(
    obj: models.Model,
    *,
    to: str,
    table: dict[str, set[str]],
    event_model: type[TransitionEvent] | None,
    actor: str,
    detail: str = "",
) -> TransitionEvent | None:
    """Move `obj` (locked by the caller) along `table` to `to` and, where its lifecycle keeps
    one (`event_model`), write its event row; the one function every lifecycle (jobs, nodes,
    allocations, orders, invoices, reservations, networks) changes state through."""
    if to not in table[obj.state]:
        name = obj._meta.verbose_name
        raise TransitionError(f"{name} {obj.pk} cannot go from {obj.state} to {to}")
    event = None
    if event_model is not None:
        owner = obj._meta.model_name
        max_length = event_model._meta.get_field("detail").max_length
        event = event_model.objects.create(
            **{owner: obj},
            from_state=obj.state,
            to_state=to,
            actor=actor,
            detail=detail[:max_length],
        )
    obj.state = to
    fields = ["state", *(["updated_at"] if hasattr(obj, "updated_at") else [])]
    obj.save(update_fields=fields)
    return event


def job_transition(*, job: Job, to: str, actor: str, detail: str = "") -> JobEvent:
    return transition(
        job, to=to, table=JOB_TRANSITIONS, event_model=JobEvent, actor=actor, detail=detail
    )
