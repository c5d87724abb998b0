from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower


class Course(models.Model):
    """A class taught on the organization's GPUs: who may launch which notebooks, for how many
    GPU-hours each, from a budget drawn from the organization's prepaid credit."""

    organization = models.ForeignKey(
        "portal.Organization", on_delete=models.PROTECT, related_name="courses"
    )
    title = models.CharField(max_length=120)
    starts_on = models.DateField()
    ends_on = models.DateField()
    profiles = models.JSONField(default=list, help_text="notebook profiles students may launch")
    gpu_hours_per_student = models.DecimalField(max_digits=8, decimal_places=2)
    budget = models.DecimalField(max_digits=12, decimal_places=2)
    idle_minutes = models.PositiveSmallIntegerField(default=30)
    ended_at = models.DateTimeField(null=True, blank=True, help_text="torn down at term end")
    alerted_percent = models.PositiveSmallIntegerField(
        default=0, help_text="the highest budget alert sent (50, 80, 100)"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_on", "title"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_on__gte=models.F("starts_on")), name="course_term_order"
            ),
            models.CheckConstraint(condition=Q(budget__gt=0), name="course_budget_positive"),
            models.CheckConstraint(
                condition=Q(gpu_hours_per_student__gt=0), name="course_quota_positive"
            ),
            models.CheckConstraint(condition=Q(idle_minutes__gte=1), name="course_idle_positive"),
        ]

    def __str__(self) -> str:
        return self.title


class Enrollment(models.Model):
    """Someone's place in a course: invited by email, joined once they accept."""

    class Role(models.TextChoices):
        STUDENT = "student", "Student"
        TA = "ta", "Teaching assistant"  # sees usage and stops servers; no budgets or quotas
        INSTRUCTOR = "instructor", "Instructor"  # runs the course

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="enrollments")
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.STUDENT)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="enrollments",
    )
    extra_gpu_hours = models.DecimalField(max_digits=8, decimal_places=2, default=Decimal(0))
    invited_at = models.DateTimeField(auto_now_add=True)
    joined_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["course", "email"]
        constraints = [
            models.UniqueConstraint("course", Lower("email"), name="enrollment_one_per_email"),
            models.UniqueConstraint(
                fields=["course", "user"],
                condition=Q(user__isnull=False),
                name="enrollment_one_per_user",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} in {self.course_id}"


class LabSession(models.Model):
    """A scheduled class: GPUs reserved for its window, students' servers started beforehand."""

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="lab_sessions")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    profile = models.CharField(max_length=32)
    reservation = models.ForeignKey(
        "fabric.Reservation", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    prestarted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="lab_session_window"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.course_id} lab {self.starts_at:%Y-%m-%d %H:%M}"
