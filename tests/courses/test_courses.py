"""Courses: created within the organization's prepaid credit, rosters imported whole or not at
all, invitations joined by the invited address only, launches refused with a clear message
over quota, over budget or outside the term, staff roles, usage CSV, and the hub's admission
applying the same rules."""

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.utils import timezone

from catalog.services.notebooks import notebook_admission
from catalog.services.orders import order_advance_run
from catalog.services.products import product_upsert
from courses import services
from courses.models import Enrollment
from courses.roster import RosterError, roster_parse_csv, roster_parse_text
from courses.rules import launch_refusal
from portal.services.audit import Actor
from tests.courses.factories import course_of, past_usage, student_in, university
from tests.portal.factories import member

pytestmark = pytest.mark.django_db


def test_a_course_budget_must_fit_in_the_uncommitted_prepaid_credit():
    admin = university(credit="300")
    membership = admin.memberships.get()
    today = timezone.localdate()
    values = {
        "title": "ML", "starts_on": today, "ends_on": today + timedelta(days=30),
        "profiles_allowed": ["h100-1g"], "gpu_hours_per_student": Decimal(5),
        "idle_minutes": 20, "actor": Actor(user=admin),
    }  # fmt: skip
    services.course_create(membership=membership, budget=Decimal(200), **values)
    with pytest.raises(ValidationError) as error:
        services.course_create(membership=membership, budget=Decimal(200), **values)
    assert "$100.00 is not yet committed" in str(error.value)
    with pytest.raises(PermissionDenied):
        plain = member(role="member", organization=membership.organization)
        services.course_create(membership=plain.memberships.get(), budget=Decimal(1), **values)


def test_a_roster_with_a_bad_row_is_reported_row_by_row_and_nothing_is_imported():
    with pytest.raises(RosterError) as error:
        roster_parse_text("ada@example.edu\nnot-an-address\nada@example.edu\nbob@example.edu")
    assert error.value.messages == [
        "row 2: 'not-an-address' is not an email address",
        "row 3: ada@example.edu appears twice",
    ]
    with pytest.raises(RosterError, match="row 3: role 'dean'"):
        roster_parse_csv(b"email,role\nada@example.edu,student\nbob@example.edu,dean\n")
    rows = roster_parse_csv(b"\xef\xbb\xbfEmail,Role\nada@example.edu,\ncyd@example.edu,ta\n")
    assert [(r.email, r.role) for r in rows] == [
        ("ada@example.edu", "student"),
        ("cyd@example.edu", "ta"),
    ]


def test_importing_a_roster_invites_new_addresses_once_and_mails_a_join_link(
    mailoutbox, django_capture_on_commit_callbacks
):
    admin = university()
    course = course_of(admin)
    rows = roster_parse_text("ada@example.edu, bob@example.edu; cyd@example.edu")
    with django_capture_on_commit_callbacks(execute=True):
        created = services.roster_import(
            course=course, by=admin, rows=rows, actor=Actor(user=admin), base_url="http://x"
        )
    assert len(created) == 3
    assert sorted(m.to[0] for m in mailoutbox) == [r.email for r in rows]
    assert "http://x/courses/join/" in mailoutbox[0].body and "no card needed" in mailoutbox[0].body
    again = services.roster_import(
        course=course, by=admin, rows=rows[:1], actor=Actor(user=admin), base_url="http://x"
    )
    assert again == [] and course.enrollments.count() == 3


def test_an_invitation_is_joined_only_by_the_invited_address():
    admin = university()
    course = course_of(admin)
    enrollment = Enrollment.objects.create(course=course, email="ada@example.edu")
    token = services.invitation_token(enrollment)
    assert services.enrollment_from_token(token) == enrollment
    assert services.enrollment_from_token(token + "x") is None
    intruder = member()
    with pytest.raises(PermissionDenied):
        services.enrollment_join(enrollment=enrollment, user=intruder, actor=Actor(user=intruder))
    ada = member()
    ada.email = "Ada@Example.edu"
    ada.save()
    joined = services.enrollment_join(enrollment=enrollment, user=ada, actor=Actor(user=ada))
    assert joined.user == ada and joined.joined_at


def test_launches_are_refused_with_the_reason_over_quota_over_budget_and_outside_the_term():
    admin = university()
    course = course_of(admin, gpu_hours_per_student=Decimal("2"), budget=Decimal("50"))
    student, enrollment = student_in(course)
    assert launch_refusal(course=course, enrollment=enrollment, profile="h100-1g") == ""
    assert "does not offer" in launch_refusal(course=course, enrollment=enrollment, profile="h100")

    past_usage(course, student, hours=14.5)  # 1/7 of a GPU: 14.5 h uses 2.07 GPU-hours
    refusal = launch_refusal(course=course, enrollment=enrollment, profile="h100-1g")
    assert refusal.startswith("Your GPU-hour quota for Deep Learning 101 is used up (2.07 of")
    services.enrollment_extend(
        course=course, enrollment=enrollment, hours=Decimal(5), by=admin, actor=Actor(user=admin)
    )
    enrollment.refresh_from_db()
    assert launch_refusal(course=course, enrollment=enrollment, profile="h100-1g") == ""

    other, other_enrollment = student_in(course)
    past_usage(course, other, hours=1, profile="h100-1g").__class__.objects.filter(
        created_by=other
    ).update(hourly_quote=Decimal(1))
    course.budget = Decimal("0.01")
    course.save()
    assert "budget of Deep Learning 101 is used up" in launch_refusal(
        course=course, enrollment=other_enrollment, profile="h100-1g"
    )
    course.budget, course.ends_on = Decimal(500), timezone.localdate() - timedelta(days=1)
    course.starts_on = course.ends_on - timedelta(days=3)
    course.save()
    assert launch_refusal(course=course, enrollment=enrollment, profile="h100-1g").endswith(
        "has ended."
    )


def test_the_hubs_admission_applies_the_course_rules_to_a_course_notebook():
    admin = university()
    course = course_of(admin, gpu_hours_per_student=Decimal("1"))
    student, _ = student_in(course)
    past_usage(course, student, hours=8)
    product = product_upsert(slug="notebook", name="Notebook", kind="notebook", summary="-")
    order = past_usage(course, student, hours=0)
    order.__class__.objects.filter(pk=order.pk).update(
        state="launching", ready_at=None, ended_at=None, cleaned_up_at=None, product=product
    )
    decision = notebook_admission(hub_user=f"u{student.pk}", server=f"o{order.pk}")
    assert not decision.allowed and "quota" in decision.message
    assert not notebook_admission(hub_user=f"u{admin.pk}", server=f"o{order.pk}").allowed


def test_tas_see_and_stop_but_do_not_change_quotas_and_others_see_nothing(client):
    admin = university()
    course = course_of(admin)
    ta, _ = student_in(course, role=Enrollment.Role.TA)
    student, enrollment = student_in(course)
    past_usage(course, student, hours=3)
    with pytest.raises(PermissionDenied):
        services.enrollment_extend(
            course=course, enrollment=enrollment, hours=Decimal(1), by=ta, actor=Actor(user=ta)
        )
    assert services.course_stop(course=course, by=ta, actor=Actor(user=ta)) == 0
    client.force_login(ta)
    page = client.get(f"/courses/{course.pk}/").content.decode()
    assert student.email in page and 'id="import-roster"' not in page
    csv = client.get(f"/courses/{course.pk}/usage.csv").content.decode().splitlines()
    assert csv[0] == "email,role,joined,gpu_hours,quota_gpu_hours,cost_usd"
    assert any(line.startswith(f"{student.email},student,") and ",0.4286," in line for line in csv)
    client.force_login(student)
    assert client.get(f"/courses/{course.pk}/usage.csv").status_code == 403
    assert 'id="launch"' in client.get(f"/courses/{course.pk}/").content.decode()
    client.force_login(member())
    assert client.get(f"/courses/{course.pk}/").status_code == 404


def test_a_student_address_that_reads_as_a_formula_is_inert_text_in_the_usage_csv(client):
    address = "=1+2@evil.example"
    validate_email(address)  # an address a student may really have
    admin = university()
    course = course_of(admin)
    _, enrollment = student_in(course)
    Enrollment.objects.filter(pk=enrollment.pk).update(email=address)
    client.force_login(admin)

    response = client.get(f"/courses/{course.pk}/usage.csv")

    header, row = csv.reader(io.StringIO(response.content.decode()))
    assert header[0] == "email" and row[:2] == ["'" + address, "student"]
    assert not [c for c in row if c.startswith(("=", "+", "-", "@", "\t", "\r"))]


def test_course_budget_alerts_go_out_once_per_level_and_at_100_percent_notebooks_stop(
    mailoutbox, django_capture_on_commit_callbacks
):
    from catalog.models import Order

    admin = university()
    course = course_of(admin, budget=Decimal("10"))
    student, _ = student_in(course)
    spent = past_usage(course, student, hours=1)
    Order.objects.filter(pk=spent.pk).update(hourly_quote=Decimal("5.5"))  # $5.50: 55 %
    with django_capture_on_commit_callbacks(execute=True):
        assert services.course_budgets_check() == 1
        assert services.course_budgets_check() == 0  # once per level
    assert mailoutbox[-1].subject == "Deep Learning 101: 50% of the budget used"
    assert admin.email in mailoutbox[-1].to

    running = past_usage(course, student, hours=1)
    Order.objects.filter(pk=running.pk).update(
        state="active", ended_at=None, cleaned_up_at=None, hourly_quote=Decimal("5")
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert services.course_budgets_check() == 1
    running.refresh_from_db()
    assert running.state == "stopping" and "course budget used up" in running.message
    assert "being stopped" in mailoutbox[-1].body


def test_a_lab_session_reserves_gpus_and_starts_the_students_servers_beforehand():
    from catalog.models import Order
    from tests.catalog.test_notebooks import h100_node

    h100_node()
    product_upsert(slug="notebook", name="Notebook", kind="notebook", summary="-")
    admin = university()
    course = course_of(admin)
    student, _ = student_in(course)
    starts = timezone.now() + timedelta(minutes=30)
    session = services.lab_session_schedule(
        course=course, starts_at=starts, ends_at=starts + timedelta(hours=2), profile="h100-1g",
        by=admin, actor=Actor(user=admin),
    )  # fmt: skip
    assert session.reservation.count == 1  # one student on 1/7 of a GPU: one GPU held
    assert session.reservation.starts_at == starts - services.PRESTART
    assert services.lab_sessions_prestart(now=timezone.now()) == 0  # not yet
    _shift(session, -timedelta(minutes=25))  # the clock moves to 5 minutes before class
    assert services.lab_sessions_prestart() == 1
    order = Order.objects.get(created_by=student)
    assert order.spec["course"] == course.pk and order.organization == course.organization
    assert order.spec["reservation"] == session.reservation_id
    assert services.lab_sessions_prestart() == 0  # once

    # The allocation step takes the student's slice out of the session's held GPU.
    for _ in range(2):  # placed -> authorized -> queued
        order_advance_run(order_id=order.pk)
    order.refresh_from_db()
    held = session.reservation.holds.get().bookings.values_list("gpu_id", flat=True)
    assert order.allocation.detail == f"from reservation {session.reservation_id}"
    assert order.allocation.bookings.get().gpu_id in set(held)


def _shift(session, delta) -> None:
    """Move a lab session, its reservation and the GPUs it holds by `delta` (the test's clock)."""
    from django.db.backends.postgresql.psycopg_any import DateTimeTZRange

    from courses.models import LabSession

    LabSession.objects.filter(pk=session.pk).update(
        starts_at=session.starts_at + delta, ends_at=session.ends_at + delta
    )
    reservation = session.reservation
    reservation.starts_at += delta
    reservation.ends_at += delta
    reservation.save()
    for hold in reservation.holds.all():
        hold.starts_at += delta
        hold.ends_at += delta
        hold.save()
        for booking in hold.bookings.all():
            lower, upper = booking.period.lower + delta, booking.period.upper + delta
            booking.period = DateTimeTZRange(lower, upper, "[)")
            booking.save()
