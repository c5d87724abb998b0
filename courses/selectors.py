"""Reads of courses. Staff (the organization's owners and admins, the course's instructors and
TAs) see a course; a student sees their own enrolment; anyone else gets a 404."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils import timezone

from catalog.offerings.notebook import profiles
from catalog.selectors.orders import order_list_for_course
from courses.models import Course, Enrollment
from fabric.capacity.engine import PROFILES, SLICE_UNITS
from portal.models import Membership, User

Role = Enrollment.Role
ORG_ADMINS = (Membership.Role.OWNER, Membership.Role.ADMIN)
HOUR = Decimal(3600)


def course_list_for_user(*, user: User) -> QuerySet[Course]:
    return Course.objects.filter(
        Q(organization__memberships__user=user, organization__memberships__role__in=ORG_ADMINS)
        | Q(enrollments__user=user)
    ).distinct()


def staff_role(*, user: User, course: Course) -> str | None:
    """instructor (org owners and admins count as instructors), ta, or None."""
    if Membership.objects.filter(
        user=user, organization_id=course.organization_id, role__in=ORG_ADMINS
    ).exists():
        return Role.INSTRUCTOR
    enrolment = Enrollment.objects.filter(course=course, user=user).first()
    if enrolment and enrolment.role in (Role.INSTRUCTOR, Role.TA):
        return enrolment.role
    return None


def course_get_for_user(*, user: User, course_id: int) -> tuple[Course, str]:
    """The course and the user's role in it (instructor, ta or student); 404 otherwise."""
    course = Course.objects.filter(pk=course_id).select_related("organization").first()
    if course is not None:
        role = staff_role(user=user, course=course)
        if role:
            return course, role
        if Enrollment.objects.filter(course=course, user=user, role=Role.STUDENT).exists():
            return course, Role.STUDENT
    raise Http404("No such course.")


def course_orders(*, course: Course) -> QuerySet:
    return order_list_for_course(organization_id=course.organization_id, course_id=course.pk)


def gpu_share(profile_key: str) -> Decimal:
    profile = profiles().get(profile_key, {})
    if profile.get("shape") == "slice":
        return Decimal(PROFILES[profile["slice_profile"]]) / SLICE_UNITS
    return Decimal(1)


def _hours(order, now=None) -> Decimal:
    if order.ready_at is None:
        return Decimal(0)
    end = order.ended_at or now or timezone.now()
    return Decimal(str(max((end - order.ready_at).total_seconds(), 0))) / HOUR


def order_gpu_hours(order, now=None) -> Decimal:
    return _hours(order, now) * gpu_share(order.spec.get("profile", ""))


def order_spend(order, now=None) -> Decimal:
    """What the notebook cost the course: its running time at the price quoted at launch."""
    return (_hours(order, now) * order.hourly_quote).quantize(Decimal("0.0001"))


@dataclass
class StudentUsage:
    enrollment: Enrollment
    gpu_hours: Decimal
    quota: Decimal
    cost: Decimal
    running: list  # the orders of the notebooks running now

    @property
    def left(self) -> Decimal:
        return max(self.quota - self.gpu_hours, Decimal(0))


def _usage(course: Course, enrolment: Enrollment, orders: list, now) -> StudentUsage:
    return StudentUsage(
        enrollment=enrolment,
        gpu_hours=sum((order_gpu_hours(o, now) for o in orders), Decimal(0)),
        quota=course.gpu_hours_per_student + enrolment.extra_gpu_hours,
        cost=sum((order_spend(o, now) for o in orders), Decimal(0)),
        running=[o for o in orders if o.state in LIVE],
    )


def course_usage(*, course: Course) -> tuple[list[StudentUsage], Decimal]:
    """Per enrolled person: GPU-hours used, quota, cost and running notebooks; and the
    course's total spend. Live: running notebooks count to the second."""
    now = timezone.now()
    by_user: dict[int, list] = {}
    for order in course_orders(course=course):
        by_user.setdefault(order.created_by_id, []).append(order)
    rows = [
        _usage(course, enrolment, by_user.get(enrolment.user_id, []), now)
        for enrolment in course.enrollments.select_related("user").order_by("email")
    ]
    return rows, sum((row.cost for row in rows), Decimal(0))


LIVE = ("placed", "authorized", "queued", "allocating", "launching", "ready", "active")


def student_usage(*, course: Course, user: User) -> StudentUsage | None:
    """One enrolled person's usage (their orders only)."""
    enrolment = course.enrollments.filter(user=user).first()
    if enrolment is None:
        return None
    orders = list(course_orders(course=course).filter(created_by=user))
    return _usage(course, enrolment, orders, timezone.now())


def course_spent(*, course: Course) -> Decimal:
    now = timezone.now()
    orders = course_orders(course=course).exclude(ready_at=None)
    return sum((order_spend(o, now) for o in orders), Decimal(0))
