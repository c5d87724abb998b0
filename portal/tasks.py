from smtplib import SMTPException

from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from portal.models import Job
from portal.services.jobs import job_self_check_run
from portal.services.mail import mail_deliver


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def job_run(job_id: int) -> str:
    job = Job.objects.get(pk=job_id)
    runners = {
        Job.Kind.SELF_CHECK: lambda: job_self_check_run(
            job_id=job_id, actor="task:job_run", step_seconds=settings.SELF_CHECK_STEP_SECONDS
        ),
    }
    return runners[job.kind]().state


@shared_task
def ping(sent_at: float) -> float:
    """Echo for round-trip measurements (bench/ and /healthz)."""
    return sent_at


@shared_task(
    acks_late=True,
    # A refused connection, a timeout and the server's 4xx/5xx answers: try again later, with
    # backoff doubling from 1 s up to 10 minutes (about an hour and a half in all).
    autoretry_for=(SMTPException, OSError),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=12,
)
def mail_send(**pieces) -> None:
    """Send a message rendered by the request that queued it (portal.services.mail)."""
    mail_deliver(**pieces)
