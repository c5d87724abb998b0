"""Course pages: the list, creating a course, the staff page (usage, running servers, roster,
quotas, lab sessions, CSV, term end), the student page (Launch), and joining by invitation."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from courses import services
from courses.forms import CourseForm, ExtendForm, LabSessionForm, LaunchForm, RosterForm
from courses.models import Enrollment
from courses.roster import RosterError, roster_parse_csv, roster_parse_text
from courses.selectors import (
    ORG_ADMINS,
    course_get_for_user,
    course_list_for_user,
    course_orders,
    course_usage,
    student_usage,
)
from portal.services.audit import Actor
from portal.spreadsheets import csv_writer

Role = Enrollment.Role


@login_required
def course_list(request):
    membership = request.membership
    return render(
        request,
        "courses/course_list.html",
        {
            "courses": course_list_for_user(user=request.user),
            "can_create": membership is not None and membership.role in ORG_ADMINS,
        },
    )


@login_required
def course_create(request):
    form = CourseForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        values = dict(form.cleaned_data)
        try:
            course = services.course_create(
                membership=request.membership,
                profiles_allowed=values.pop("profiles"),
                actor=Actor.from_request(request),
                **values,
            )
            return redirect("courses:detail", course_id=course.pk)
        except ValidationError as error:
            for field, errors in error.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        except PermissionDenied as denied:
            form.add_error(None, str(denied))
    return render(request, "courses/course_form.html", {"form": form})


@login_required
def course_detail(request, course_id: int):
    course, role = course_get_for_user(user=request.user, course_id=course_id)
    if role == Role.STUDENT:
        return _student_page(request, course)
    rows, spent = course_usage(course=course)
    return render(
        request,
        "courses/course_staff.html",
        {
            "course": course,
            "role": role,
            "rows": rows,
            "spent": spent,
            "instructor": role == Role.INSTRUCTOR,
            "roster_form": RosterForm(),
            "extend_form": ExtendForm(),
            "session_form": LabSessionForm(course=course),
            "sessions": course.lab_sessions.all(),
        },
    )


def _student_page(request, course):
    form = LaunchForm(request.POST or None, course=course)
    usage = student_usage(course=course, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            order = services.course_notebook_launch(
                course=course,
                user=request.user,
                profile=form.cleaned_data["profile"],
                actor=Actor.from_request(request),
            )
            return redirect(reverse("orders:detail", args=[order.pk]) + "?open=1")
        except (PermissionDenied, ValidationError) as refused:
            messages.error(request, " ".join(getattr(refused, "messages", [str(refused)])))
    return render(
        request,
        "courses/course_student.html",
        {"course": course, "form": form, "usage": usage},
    )


def _staff(request, course_id: int, instructor: bool = False):
    course, role = course_get_for_user(user=request.user, course_id=course_id)
    if role == Role.STUDENT or (instructor and role != Role.INSTRUCTOR):
        raise PermissionDenied("Only the course's instructors may do this.")
    return course


def _back(course):
    return redirect("courses:detail", course_id=course.pk)


@login_required
@require_POST
def roster_import(request, course_id: int):
    course = _staff(request, course_id, instructor=True)
    form = RosterForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, " ".join(form.non_field_errors()) or "Check the roster form.")
        return _back(course)
    try:
        upload = form.cleaned_data.get("file")
        rows = (
            roster_parse_csv(upload.read())
            if upload
            else roster_parse_text(form.cleaned_data["emails"])
        )
        created = services.roster_import(
            course=course,
            by=request.user,
            rows=rows,
            actor=Actor.from_request(request),
            base_url=request.build_absolute_uri("/")[:-1],
        )
    except RosterError as error:
        messages.error(request, "Nothing was imported. " + "; ".join(error.messages))
        return _back(course)
    skipped = len(rows) - len(created)
    note = f" ({skipped} already enrolled)" if skipped else ""
    messages.success(request, f"Invited {len(created)} people{note}.")
    return _back(course)


@login_required
@require_POST
def quota_extend(request, course_id: int, enrollment_id: int):
    course = _staff(request, course_id, instructor=True)
    enrollment = course.enrollments.filter(pk=enrollment_id).first()
    form = ExtendForm(request.POST)
    if enrollment is None:
        raise Http404("No such student.")
    if form.is_valid():
        services.enrollment_extend(
            course=course,
            enrollment=enrollment,
            hours=form.cleaned_data["hours"],
            by=request.user,
            actor=Actor.from_request(request),
        )
        messages.success(request, f"{enrollment.email}: +{form.cleaned_data['hours']} GPU-hours.")
    return _back(course)


@login_required
@require_POST
def servers_stop(request, course_id: int):
    course = _staff(request, course_id)
    order = None
    if request.POST.get("order"):
        order = course_orders(course=course).filter(pk=request.POST["order"]).first()
        if order is None:
            raise Http404("No such notebook.")
    stopped = services.course_stop(
        course=course, by=request.user, actor=Actor.from_request(request), order=order
    )
    messages.info(request, f"Stopping {stopped} notebook(s).")
    return _back(course)


@login_required
@require_POST
def session_schedule(request, course_id: int):
    course = _staff(request, course_id, instructor=True)
    form = LabSessionForm(request.POST, course=course)
    if form.is_valid():
        try:
            services.lab_session_schedule(
                course=course,
                by=request.user,
                actor=Actor.from_request(request),
                **form.cleaned_data,
            )
            messages.success(request, "Lab session scheduled; GPUs reserved.")
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
    else:
        messages.error(request, "Check the lab session's times.")
    return _back(course)


@login_required
@require_POST
def course_end(request, course_id: int):
    course = _staff(request, course_id, instructor=True)
    services.course_end(course=course, by=request.user, actor=Actor.from_request(request))
    messages.info(request, f"{course.title} has ended: every notebook is being stopped.")
    return _back(course)


@login_required
def usage_csv(request, course_id: int):
    course = _staff(request, course_id)
    rows, _ = course_usage(course=course)
    response = HttpResponse(content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="course-{course.pk}-usage.csv"'
    writer = csv_writer(response)  # emails are the students' own text
    writer.writerow(["email", "role", "joined", "gpu_hours", "quota_gpu_hours", "cost_usd"])
    for row in rows:
        e = row.enrollment
        writer.writerow(
            [
                e.email,
                e.role,
                e.joined_at.isoformat() if e.joined_at else "",
                f"{row.gpu_hours:.4f}",
                f"{row.quota:.2f}",
                f"{row.cost:.2f}",
            ]
        )
    return response


def join(request, token: str):
    enrollment = services.enrollment_from_token(token)
    if enrollment is None:
        raise Http404("This invitation link is invalid or expired.")
    if not request.user.is_authenticated:
        return render(
            request, "courses/join.html", {"enrollment": enrollment, "next": request.path}
        )
    if request.method == "POST":
        try:
            services.enrollment_join(
                enrollment=enrollment, user=request.user, actor=Actor.from_request(request)
            )
        except PermissionDenied as denied:
            raise Http404(str(denied)) from None
        messages.success(request, f"Welcome to {enrollment.course.title}.")
        return redirect("courses:detail", course_id=enrollment.course_id)
    return render(request, "courses/join.html", {"enrollment": enrollment})
