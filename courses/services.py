"""The write path of courses: create a course, import its roster (invitations by email),
join, launch a notebook under the course's rules, extend a quota, stop servers, schedule lab
sessions (GPUs reserved, servers started before class), and end the term."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from billing.selectors import credit_balance
from catalog.offerings.notebook import profiles
from catalog.selectors.storefront import notebook_product_get
from catalog.services.orders import order_create, order_terminate
from courses.models import Course, Enrollment, LabSession
from courses.roster import RosterRow
from courses.rules import launch_refusal
from courses.selectors import LIVE, ORG_ADMINS, course_orders, gpu_share, staff_role
from fabric.services.reservations import reservation_book
from portal.models import Membership, User
from portal.services.audit import Actor, audit_record

Role = Enrollment.Role
INVITATION_SALT = "course-invitation"
PRESTART = timedelta(minutes=10)


def _require_instructor(user: User, course: Course) -> None:
    if staff_role(user=user, course=course) != Role.INSTRUCTOR:
        raise PermissionDenied("Only the course's instructors may do this.")


def _require_staff(user: User, course: Course) -> None:
    if staff_role(user=user, course=course) is None:
        raise PermissionDenied("Only the course's staff may do this.")


@transaction.atomic
def course_create(
    *,
    membership: Membership,
    title: str,
    starts_on: date,
    ends_on: date,
    profiles_allowed: list[str],
    gpu_hours_per_student: Decimal,
    budget: Decimal,
    idle_minutes: int,
    actor: Actor,
) -> Course:
    if membership.role not in ORG_ADMINS:
        raise PermissionDenied("Only the organization's owners and admins create courses.")
    errors = {}
    unknown = [p for p in profiles_allowed if p not in profiles()]
    if unknown or not profiles_allowed:
        errors["profiles"] = f"Choose from {', '.join(profiles())}."
    if ends_on < starts_on:
        errors["ends_on"] = "The term must end on or after its first day."
    organization = membership.organization
    committed = sum(
        (c.budget for c in Course.objects.filter(organization=organization, ended_at=None)),
        Decimal(0),
    )
    available = credit_balance(organization=organization) - committed
    if budget > available:
        errors["budget"] = (
            f"The budget is drawn from prepaid credit: ${max(available, 0):.2f} is not yet "
            "committed to other courses."
        )
    if errors:
        raise ValidationError(errors)
    course = Course.objects.create(
        organization=organization,
        title=title.strip()[:120],
        starts_on=starts_on,
        ends_on=ends_on,
        profiles=profiles_allowed,
        gpu_hours_per_student=gpu_hours_per_student,
        budget=budget,
        idle_minutes=idle_minutes,
        created_by=membership.user,
    )
    audit_record(
        actor=actor, organization=organization, action="course.create", target=course.title
    )
    return course


def invitation_token(enrollment: Enrollment) -> str:
    return signing.dumps(enrollment.pk, salt=INVITATION_SALT)


def enrollment_from_token(token: str) -> Enrollment | None:
    try:
        pk = signing.loads(token, salt=INVITATION_SALT, max_age=settings.INVITATION_MAX_AGE * 8)
    except signing.BadSignature:
        return None
    return Enrollment.objects.select_related("course").filter(pk=pk).first()


@transaction.atomic
def roster_import(
    *, course: Course, by: User, rows: list[RosterRow], actor: Actor, base_url: str
) -> list[Enrollment]:
    """Invite every new address (rows already checked; an address enrolled before is left as
    it is). Invitations are emailed once the import is committed."""
    _require_instructor(by, course)
    if course.ended_at:
        raise ValidationError("The course has ended.")
    existing = {e.lower() for e in course.enrollments.values_list("email", flat=True)}
    created = [
        Enrollment.objects.create(course=course, email=row.email, role=row.role)
        for row in rows
        if row.email.lower() not in existing
    ]
    audit_record(
        actor=actor,
        organization=course.organization,
        action="course.roster_import",
        target=course.title,
        detail={"invited": len(created), "rows": len(rows)},
    )

    def send() -> None:
        for enrollment in created:
            link = base_url + reverse("courses:join", args=[invitation_token(enrollment)])
            send_mail(
                subject=f"You are invited to {course.title}",
                message=(
                    f"You have a place in {course.title} ({course.starts_on:%B %-d} to "
                    f"{course.ends_on:%B %-d}), with GPU notebooks paid for by the course.\n\n"
                    f"Join (sign up with this address if you have no account, no card needed):\n"
                    f"{link}\n"
                ),
                from_email=None,
                recipient_list=[enrollment.email],
            )

    transaction.on_commit(send)
    return created


@transaction.atomic
def enrollment_join(*, enrollment: Enrollment, user: User, actor: Actor) -> Enrollment:
    enrollment = Enrollment.objects.select_for_update().get(pk=enrollment.pk)
    if enrollment.email.lower() != user.email.lower():
        raise PermissionDenied("This invitation was sent to another address.")
    if enrollment.user_id and enrollment.user_id != user.pk:
        raise PermissionDenied("This invitation was already used.")
    if enrollment.user_id is None:
        enrollment.user, enrollment.joined_at = user, timezone.now()
        enrollment.save(update_fields=["user", "joined_at"])
        audit_record(
            actor=actor,
            organization=enrollment.course.organization,
            action="course.join",
            target=enrollment.email,
        )
    return enrollment


def notebook_product():
    product = notebook_product_get()
    if product is None:
        raise ValidationError("No notebook product is on sale.")
    return product


@transaction.atomic
def course_notebook_launch(*, course: Course, user: User, profile: str, actor: Actor):
    """Start the student's notebook (or return the one already running), paid by the course;
    during a lab session on that profile it takes its GPU from the session's reservation."""
    live = course_orders(course=course).filter(created_by=user, state__in=LIVE).first()
    if live is not None:
        return live
    enrollment = Enrollment.objects.filter(course=course, user=user).first()
    refusal = launch_refusal(course=course, enrollment=enrollment, profile=profile)
    if refusal:
        raise PermissionDenied(refusal)
    now = timezone.now()
    session = course.lab_sessions.filter(
        profile=profile, starts_at__lte=now + PRESTART, ends_at__gt=now, reservation__isnull=False
    ).first()
    spec = {"profile": profile, "course": course.pk}
    if session is not None:
        spec["reservation"] = session.reservation_id
    return order_create(
        organization=course.organization,
        user=user,
        product=notebook_product(),
        spec=spec,
        actor=actor,
    )


@transaction.atomic
def enrollment_extend(
    *, course: Course, enrollment: Enrollment, hours: Decimal, by: User, actor: Actor
) -> Enrollment:
    _require_instructor(by, course)
    if hours <= 0:
        raise ValidationError({"hours": "Add a positive number of GPU-hours."})
    enrollment = Enrollment.objects.select_for_update().get(pk=enrollment.pk, course=course)
    enrollment.extra_gpu_hours += hours
    enrollment.save(update_fields=["extra_gpu_hours"])
    audit_record(
        actor=actor,
        organization=course.organization,
        action="course.quota_extend",
        target=enrollment.email,
        detail={"hours": str(hours)},
    )
    return enrollment


def course_stop(*, course: Course, by: User, actor: Actor, order=None) -> int:
    """Stop one running notebook of the course, or all of them (instructors and TAs)."""
    _require_staff(by, course)
    running = course_orders(course=course).filter(state__in=LIVE)
    if order is not None:
        running = running.filter(pk=order.pk)
    stopped = 0
    for live in running:
        order_terminate(order=live, actor=actor)
        stopped += 1
    return stopped


@transaction.atomic
def course_end(*, course: Course, by: User, actor: Actor) -> Course:
    """Term end: every server stopped, no more launches."""
    _require_instructor(by, course)
    course_stop(course=course, by=by, actor=actor)
    Course.objects.filter(pk=course.pk, ended_at=None).update(ended_at=timezone.now())
    course.refresh_from_db()
    audit_record(
        actor=actor, organization=course.organization, action="course.end", target=course.title
    )
    return course


@transaction.atomic
def lab_session_schedule(
    *,
    course: Course,
    starts_at: datetime,
    ends_at: datetime,
    profile: str,
    by: User,
    actor: Actor,
) -> LabSession:
    """Reserve GPUs for every joined student for the session; their servers are started
    PRESTART before it begins (lab_sessions_prestart)."""
    _require_instructor(by, course)
    if profile not in course.profiles:
        raise ValidationError({"profile": "Choose one of the course's notebooks."})
    students = course.enrollments.filter(role=Role.STUDENT).exclude(user=None).count()
    if students == 0:
        raise ValidationError("No student has joined yet.")
    gpus = math.ceil(students * gpu_share(profile))
    reservation = reservation_book(
        organization=course.organization,
        gpu_model=profiles()[profile]["gpu_model"],
        count=gpus,
        starts_at=starts_at - PRESTART,
        ends_at=ends_at,
        actor=actor,
    )
    return LabSession.objects.create(
        course=course,
        starts_at=starts_at,
        ends_at=ends_at,
        profile=profile,
        reservation=reservation,
    )


def lab_sessions_prestart(*, now: datetime | None = None) -> int:
    """Start the joined students' notebooks for sessions beginning within PRESTART."""
    now = now or timezone.now()
    started = 0
    due = LabSession.objects.filter(
        prestarted_at=None, starts_at__lte=now + PRESTART, ends_at__gt=now
    ).select_related("course")
    for session in due:
        for enrollment in session.course.enrollments.filter(role=Role.STUDENT).exclude(user=None):
            try:
                course_notebook_launch(
                    course=session.course,
                    user=enrollment.user,
                    profile=session.profile,
                    actor=Actor.system("task"),
                )
                started += 1
            except (PermissionDenied, ValidationError):
                continue  # over quota or budget: that student launches by hand, and is told why
        LabSession.objects.filter(pk=session.pk).update(prestarted_at=now)
    return started


BUDGET_LEVELS = (50, 80, 100)


def course_budgets_check() -> int:
    """Alert a course's instructors (and the organization's owners) at 50, 80 and 100 % of its
    budget, once each (an audit event and an email); at 100 % every running notebook of the
    course stops. Returns the alerts sent."""
    from courses.selectors import course_spent

    sent = 0
    for course in Course.objects.filter(ended_at=None).select_related("organization"):
        spent = course_spent(course=course)
        percent = spent / course.budget * 100
        reached = max((level for level in BUDGET_LEVELS if percent >= level), default=0)
        with transaction.atomic():
            locked = Course.objects.select_for_update().get(pk=course.pk)
            if reached <= locked.alerted_percent:
                continue
            locked.alerted_percent = reached
            locked.save(update_fields=["alerted_percent"])
            audit_record(
                actor=Actor.system("task"),
                organization=course.organization,
                action="course.budget_alert",
                target=f"{reached}% of {course.title}",
                detail={"spent": f"{spent:.2f}", "budget": str(course.budget)},
            )
            message = (
                f"{course.title} has used {reached}% of its budget: "
                f"${spent:.2f} of ${course.budget}."
            )
            if reached >= 100:
                message += " Every running notebook of the course is being stopped."
                for live in course_orders(course=course).filter(state__in=LIVE):
                    order_terminate(
                        order=live, actor=Actor.system("task"), reason="course budget used up"
                    )
            subject = f"{course.title}: {reached}% of the budget used"
            recipients = _staff_emails(course)
            transaction.on_commit(
                lambda s=subject, m=message, r=recipients: send_mail(
                    subject=s, message=m, from_email=None, recipient_list=r
                )
            )
            sent += 1
    return sent


def _staff_emails(course: Course) -> list[str]:
    admins = Membership.objects.filter(
        organization_id=course.organization_id, role__in=ORG_ADMINS
    ).values_list("user__email", flat=True)
    instructors = course.enrollments.filter(role=Role.INSTRUCTOR).values_list("email", flat=True)
    return sorted({*admins, *instructors})
