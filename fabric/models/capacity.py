from django.conf import settings
from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import DateTimeRangeField, IntegerRangeField, RangeOperators
from django.db import models
from django.db.models import Q

from fabric.choices import AllocationShape, AllocationState, AllocationTopology
from portal.models import TransitionEvent


class Reservation(models.Model):
    """N GPUs of a model held for an organization in a window, once or weekly."""

    class State(models.TextChoices):
        CONFIRMED = "confirmed", "Confirmed"
        CANCELLED = "cancelled", "Cancelled"

    organization = models.ForeignKey(
        "portal.Organization", on_delete=models.PROTECT, related_name="reservations"
    )
    gpu_model = models.CharField(max_length=64)
    count = models.PositiveIntegerField()
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    weekly_occurrences = models.PositiveSmallIntegerField(default=1)
    state = models.CharField(max_length=16, choices=State.choices, default=State.CONFIRMED)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="reservation_window"
            ),
            models.CheckConstraint(
                condition=Q(weekly_occurrences__gte=1, weekly_occurrences__lte=52),
                name="reservation_occurrences",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.count}x {self.gpu_model} from {self.starts_at:%Y-%m-%d %H:%M}"

    @property
    def gpu_hours(self) -> float:
        hours = (self.ends_at - self.starts_at).total_seconds() / 3600
        return self.count * hours * self.weekly_occurrences


class Allocation(models.Model):
    """GPUs bound to an organization for a period: whole nodes (bare metal), single GPUs or MIG
    slices (notebooks). Its bookings are what the database keeps from overlapping."""

    Shape = AllocationShape
    Topology = AllocationTopology

    organization = models.ForeignKey(
        "portal.Organization", on_delete=models.PROTECT, related_name="allocations"
    )
    shape = models.CharField(max_length=8, choices=Shape.choices)
    gpu_model = models.CharField(max_length=64)
    count = models.PositiveIntegerField(help_text="nodes, GPUs or slices, by shape")
    slice_profile = models.CharField(max_length=4, blank=True)
    gpu_units = models.PositiveIntegerField(help_text="slice units held (7 per whole GPU)")
    topology = models.CharField(max_length=16, choices=Topology.choices, default=Topology.ANY)
    topology_required = models.BooleanField(default=True)
    site = models.CharField(
        max_length=64, blank=True, help_text="whole nodes: only at this site (the site's name)"
    )
    needs_bmc = models.BooleanField(
        default=False, help_text="whole nodes whose power the platform controls (bare metal)"
    )
    priority = models.SmallIntegerField(default=0)
    state = models.CharField(
        max_length=16, choices=AllocationState.choices, default=AllocationState.REQUESTED
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(null=True, blank=True, help_text="empty: open-ended")
    lease_seconds = models.PositiveIntegerField(null=True, blank=True)
    placed_at = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    warned_at = models.DateTimeField(null=True, blank=True)
    reservation = models.ForeignKey(
        Reservation, on_delete=models.CASCADE, null=True, blank=True, related_name="holds"
    )
    claimed_from = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="claims",
        help_text="the reservation hold whose GPUs this allocation took (reservation_claim)",
    )
    queue_position = models.PositiveIntegerField(null=True, blank=True)
    estimated_start = models.DateTimeField(null=True, blank=True)
    detail = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "gpu_model"]), models.Index(fields=["ends_at"])]
        constraints = [
            models.CheckConstraint(condition=Q(count__gte=1), name="allocation_count_positive"),
            models.CheckConstraint(
                condition=Q(ends_at__isnull=True) | Q(ends_at__gt=models.F("starts_at")),
                name="allocation_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"allocation {self.pk}: {self.count} {self.shape} {self.gpu_model}"


class AllocationEvent(TransitionEvent):
    allocation = models.ForeignKey(Allocation, on_delete=models.CASCADE, related_name="events")
    from_state = models.CharField(max_length=16, choices=AllocationState.choices, blank=True)
    to_state = models.CharField(max_length=16, choices=AllocationState.choices)


class GpuBooking(models.Model):
    """One GPU (or some of its MIG slice units) held by an allocation over a period. The
    exclusion constraint makes overlapping bookings of the same units impossible."""

    allocation = models.ForeignKey(Allocation, on_delete=models.CASCADE, related_name="bookings")
    gpu = models.ForeignKey("fabric.GPU", on_delete=models.PROTECT, related_name="bookings")
    node = models.ForeignKey("fabric.Node", on_delete=models.PROTECT, related_name="bookings")
    units = IntegerRangeField(help_text="MIG slice units [first, last + 1); [0, 7) = whole GPU")
    period = DateTimeRangeField()

    class Meta:
        indexes = [models.Index(fields=["node"])]
        constraints = [
            ExclusionConstraint(
                name="gpu_booking_no_overlap",
                expressions=[
                    ("gpu", RangeOperators.EQUAL),
                    ("units", RangeOperators.OVERLAPS),
                    ("period", RangeOperators.OVERLAPS),
                ],
            ),
        ]

    def __str__(self) -> str:
        return f"GPU {self.gpu_id} units {self.units} for {self.allocation_id}"


class Quota(models.Model):
    """Limits for an organization, for one GPU model or (gpu_model empty) for all."""

    organization = models.ForeignKey(
        "portal.Organization", on_delete=models.CASCADE, related_name="quotas"
    )
    gpu_model = models.CharField(max_length=64, blank=True)
    max_gpus = models.PositiveIntegerField(null=True, blank=True, help_text="GPUs held at once")
    gpu_hours_per_month = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["organization", "gpu_model"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "gpu_model"], name="quota_unique")
        ]

    def __str__(self) -> str:
        return f"quota {self.organization_id} {self.gpu_model or 'all GPUs'}"
