from celery import shared_task

from courses.services import course_budgets_check, lab_sessions_prestart


@shared_task(acks_late=True)
def lab_sessions_start() -> int:
    return lab_sessions_prestart()


@shared_task(acks_late=True)
def course_budgets() -> int:
    return course_budgets_check()
