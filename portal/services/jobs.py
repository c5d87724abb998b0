"""Background jobs that a tenant starts and watches live."""

import time
from collections.abc import Callable

from django.conf import settings
from django.db import connection, transaction

from portal import realtime
from portal.celery import task
from portal.models import Job, Organization, User
from portal.models.jobs import JobState
from portal.selectors import job_snapshot
from portal.states import job_transition


def _publish_job_on_commit(job: Job) -> None:
    payload = job_snapshot(job)
    transaction.on_commit(
        lambda: realtime.event_publish(group=realtime.job_group(job.pk), payload=payload)
    )


@transaction.atomic
def job_start(*, user: User, organization: Organization, kind: str) -> Job:
    job = Job.objects.create(organization=organization, created_by=user, kind=kind)
    transaction.on_commit(lambda: task("portal.tasks.job_run").delay(job.pk))
    return job


@transaction.atomic
def job_progress_record(*, job_id: int, progress: int, message: str, actor: str) -> Job:
    job = Job.objects.select_for_update().get(pk=job_id)
    if job.state == JobState.QUEUED:
        job_transition(job=job, to=JobState.RUNNING, actor=actor)
    job.progress = max(job.progress, min(progress, 100))
    job.message = message[:200]
    job.save(update_fields=["progress", "message", "updated_at"])
    _publish_job_on_commit(job)
    return job


@transaction.atomic
def job_finish(*, job_id: int, actor: str, error: str = "") -> Job:
    job = Job.objects.select_for_update().get(pk=job_id)
    if error:
        job_transition(job=job, to=JobState.FAILED, actor=actor, detail=error)
        job.message = error[:200]
    else:
        job_transition(job=job, to=JobState.SUCCEEDED, actor=actor)
        job.progress = 100
        job.message = "Done"
    job.save(update_fields=["progress", "message", "updated_at"])
    _publish_job_on_commit(job)
    return job


# --- the platform self-check: each step exercises one part of the runtime ------------------------


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_tenancy() -> None:
    Organization.objects.exists()


def _check_redis() -> None:
    import redis

    redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2).ping()


def _check_channel_layer() -> None:
    realtime.event_publish(group="self-check", payload={})


SELF_CHECK_STEPS: list[tuple[str, Callable[[], None]]] = [
    ("Connecting to the database", _check_database),
    ("Reading tenancy tables", _check_tenancy),
    ("Pinging Redis", _check_redis),
    ("Publishing on the channel layer", _check_channel_layer),
]


def job_self_check_run(*, job_id: int, actor: str, step_seconds: float) -> Job:
    """Run each check, recording progress after each; a failing check fails the job."""
    job = Job.objects.get(pk=job_id)
    if job.state in (JobState.SUCCEEDED, JobState.FAILED):
        return job  # a redelivered task after the job already ended
    total = len(SELF_CHECK_STEPS)
    for index, (label, check) in enumerate(SELF_CHECK_STEPS):
        job_progress_record(
            job_id=job_id, progress=int(100 * index / total), message=label, actor=actor
        )
        try:
            check()
        except Exception as exc:  # the job reports any failure to the user
            return job_finish(job_id=job_id, actor=actor, error=f"{label} failed: {exc}")
        time.sleep(step_seconds)
    return job_finish(job_id=job_id, actor=actor)
