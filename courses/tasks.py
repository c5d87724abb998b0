from celery import shared_task

from courses.services import lab_sessions_prestart


@shared_task(acks_late=True)
def lab_sessions_start() -> int:
    return lab_sessions_prestart()
