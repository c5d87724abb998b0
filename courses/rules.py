"""A course's rules for its notebooks, asked at launch and by JupyterHub's pre-spawn hook for
every start: the term, the student's GPU-hour quota and the course budget."""

from __future__ import annotations

from django.utils import timezone

from courses.models import Course, Enrollment
from courses.selectors import course_spent, student_usage


def launch_refusal(*, course: Course, enrollment: Enrollment | None, profile: str) -> str:
    """Why this launch may not happen now ("" when it may), in words for the student."""
    today = timezone.localdate()
    if course.ended_at is not None or today > course.ends_on:
        return f"{course.title} has ended."
    if today < course.starts_on:
        return f"{course.title} starts on {course.starts_on:%B %-d}."
    if enrollment is None or enrollment.user_id is None:
        return f"You are not enrolled in {course.title}."
    if profile not in course.profiles:
        return "This course does not offer that notebook."
    usage = student_usage(course=course, user=enrollment.user)
    used, quota = usage.gpu_hours, usage.quota
    if used >= quota:
        return (
            f"Your GPU-hour quota for {course.title} is used up ({used:.2f} of {quota:.2f} h). "
            "Ask your instructor for more."
        )
    spent = course_spent(course=course)
    if spent >= course.budget:
        return f"The budget of {course.title} is used up (${spent:.2f} of ${course.budget})."
    return ""


def order_refusal(order) -> str:
    """For JupyterHub's pre-spawn hook: the same rules for a course notebook."""
    course_id = order.spec.get("course")
    if not course_id:
        return ""
    course = Course.objects.filter(pk=course_id).first()
    if course is None:
        return "This course no longer exists."
    enrollment = Enrollment.objects.filter(course=course, user_id=order.created_by_id).first()
    return launch_refusal(course=course, enrollment=enrollment, profile=order.spec["profile"])


def order_idle_minutes(order) -> int | None:
    course_id = order.spec.get("course")
    if not course_id:
        return None
    return Course.objects.filter(pk=course_id).values_list("idle_minutes", flat=True).first()
