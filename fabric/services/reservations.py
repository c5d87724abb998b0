"""Reservations: N GPUs of a model held for an organization in a window, once or weekly (a
course's lab hours). Booking answers at once: confirmed, or the nearest windows that fit."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.backends.postgresql.psycopg_any import DateTimeTZRange, NumericRange
from django.utils import timezone

from fabric.capacity.engine import PROFILES, SLICE_UNITS, Request
from fabric.capacity.loader import CapacitySource
from fabric.models import Allocation, AllocationState, GpuBooking, Reservation
from fabric.services.allocations import allocation_release
from fabric.services.placement import activate, lock_model, place
from fabric.services.quotas import quota_check
from fabric.states import reservation_transition
from portal.models import Organization
from portal.services.audit import Actor

WEEK = timedelta(days=7)
SEARCH_STEP = timedelta(hours=1)
SEARCH_SPAN = timedelta(days=7)


class NoCapacity(ValidationError):
    def __init__(self, message: str, suggestions: list[tuple[datetime, datetime]]):
        super().__init__(message)
        self.suggestions = suggestions


def _occurrences(starts_at: datetime, ends_at: datetime, weekly: int):
    return [(starts_at + k * WEEK, ends_at + k * WEEK) for k in range(weekly)]


def reservation_fits(
    *, gpu_model: str, count: int, windows: list[tuple[datetime, datetime]], source=None
) -> bool:
    source = source or CapacitySource(gpu_model=gpu_model, start=windows[0][0], end=windows[-1][1])
    request = Request(gpu_model, count, shape="gpu")
    return all(source.at(start, end).place(request) is not None for start, end in windows)


def reservation_suggest(
    *,
    gpu_model: str,
    count: int,
    starts_at: datetime,
    ends_at: datetime,
    weekly_occurrences: int = 1,
    now: datetime,
    limit: int = 3,
) -> list[tuple[datetime, datetime]]:
    """The `limit` windows nearest to the asked one (same length, shifted by whole hours, up to
    a week either way, never in the past) in which the reservation fits."""
    last = weekly_occurrences - 1
    source = CapacitySource(
        gpu_model=gpu_model,
        start=max(starts_at - SEARCH_SPAN, now),
        end=ends_at + SEARCH_SPAN + last * WEEK,
    )
    found = []
    for step in range(1, int(SEARCH_SPAN / SEARCH_STEP) + 1):
        for shift in (step * SEARCH_STEP, -step * SEARCH_STEP):
            start, end = starts_at + shift, ends_at + shift
            if start < now:
                continue
            windows = _occurrences(start, end, weekly_occurrences)
            if reservation_fits(gpu_model=gpu_model, count=count, windows=windows, source=source):
                found.append((start, end))
                if len(found) == limit:
                    return sorted(found)
    return sorted(found)


class _NoFit(Exception):
    pass


def reservation_book(
    *,
    organization: Organization,
    gpu_model: str,
    count: int,
    starts_at: datetime,
    ends_at: datetime,
    actor: Actor,
    weekly_occurrences: int = 1,
    now: datetime | None = None,
) -> Reservation:
    """Hold `count` GPUs for each occurrence, all or none; NoCapacity lists nearby windows."""
    now = now or timezone.now()
    if count < 1:
        raise ValidationError({"count": "Reserve at least one GPU."})
    if starts_at < now:
        raise ValidationError({"starts_at": "The window must start in the future."})
    if ends_at <= starts_at:
        raise ValidationError({"ends_at": "The window must end after it starts."})
    if not 1 <= weekly_occurrences <= 52:
        raise ValidationError({"weekly_occurrences": "Between 1 and 52 weeks."})
    windows = _occurrences(starts_at, ends_at, weekly_occurrences)
    for start, end in windows:
        quota_check(
            organization=organization,
            gpu_model=gpu_model,
            gpu_units=count * SLICE_UNITS,
            starts_at=start,
            ends_at=end,
            now=now,
        )
    try:
        with transaction.atomic():
            lock_model(gpu_model)
            reservation = Reservation.objects.create(
                organization=organization,
                gpu_model=gpu_model,
                count=count,
                starts_at=starts_at,
                ends_at=ends_at,
                weekly_occurrences=weekly_occurrences,
                created_by=actor.user,
            )
            for start, end in windows:
                _hold(reservation, start, end, actor, now)
    except _NoFit as missing:
        start, end = missing.args
        suggestions = reservation_suggest(
            gpu_model=gpu_model,
            count=count,
            starts_at=starts_at,
            ends_at=ends_at,
            weekly_occurrences=weekly_occurrences,
            now=now,
        )
        raise NoCapacity(
            f"{count} {gpu_model} GPU(s) are not free from {start:%Y-%m-%d %H:%M} to "
            f"{end:%H:%M} UTC.",
            suggestions,
        ) from None
    return reservation


def _hold(reservation: Reservation, start, end, actor: Actor, now: datetime) -> None:
    """Place one occurrence's GPUs (raises _NoFit when they are not free)."""
    hold = Allocation.objects.create(
        organization=reservation.organization,
        shape=Allocation.Shape.GPU,
        gpu_model=reservation.gpu_model,
        count=reservation.count,
        gpu_units=reservation.count * SLICE_UNITS,
        starts_at=start,
        ends_at=end,
        reservation=reservation,
        created_by=actor.user,
    )
    if not place(allocation=hold, now=now, actor=actor):
        raise _NoFit(start, end)
    activate(allocation=hold, now=now, actor=actor)


@transaction.atomic
def reservation_cancel(*, reservation: Reservation, actor: Actor, now: datetime | None = None):
    now = now or timezone.now()
    reservation.refresh_from_db(from_queryset=Reservation.objects.select_for_update())
    for hold in reservation.holds.exclude(state=AllocationState.RELEASED):
        allocation_release(allocation=hold, actor=actor, now=now, reason="reservation cancelled")
    if reservation.state != Reservation.State.CANCELLED:  # cancelling twice is not an error
        reservation_transition(
            reservation=reservation, to=Reservation.State.CANCELLED, actor=actor.label
        )
    return reservation


@transaction.atomic
def reservation_claim(
    *,
    reservation: Reservation,
    shape: str,
    actor: Actor,
    slice_profile: str = "",
    now: datetime | None = None,
) -> Allocation | None:
    """Take one GPU or one MIG slice out of the reservation's hold that covers `now` and give
    it to a new allocation of the same organization until the hold ends (a lab session's
    notebook). None when no hold covers `now` or it has no room left: the caller asks for
    capacity the usual way."""
    now = now or timezone.now()
    if reservation.state != Reservation.State.CONFIRMED:
        return None
    need = SLICE_UNITS if shape == Allocation.Shape.GPU else PROFILES.get(slice_profile, 0)
    if not need:
        return None
    lock_model(reservation.gpu_model)
    hold = (
        reservation.holds.select_for_update()
        .filter(state__in=[AllocationState.PLACED, AllocationState.ACTIVE])
        .filter(starts_at__lte=now, ends_at__gt=now)
        .first()
    )
    if hold is None:
        return None
    for booking in hold.bookings.select_for_update().order_by("gpu_id", "units"):
        lower, upper = booking.units.lower, booking.units.upper
        if upper - lower < need or not booking.period.lower <= now < booking.period.upper:
            continue
        end = booking.period.upper
        claim = Allocation.objects.create(
            organization=reservation.organization,
            shape=shape,
            gpu_model=reservation.gpu_model,
            count=1,
            slice_profile=slice_profile if shape == Allocation.Shape.SLICE else "",
            gpu_units=need,
            starts_at=now,
            ends_at=end,
            placed_at=now,
            created_by=actor.user,
            detail=f"from reservation {reservation.pk}",
            claimed_from=hold,
        )
        # The hold keeps what it had before now and the units left over after; the claim
        # takes [lower, lower + need) from now on.
        if booking.period.lower < now:
            booking.period = DateTimeTZRange(booking.period.lower, now, "[)")
            booking.save(update_fields=["period"])
            rest = None
        else:
            rest = booking
        if upper - lower > need:
            leftover = NumericRange(lower + need, upper)
            if rest is None:
                GpuBooking.objects.create(
                    allocation=hold,
                    gpu_id=booking.gpu_id,
                    node_id=booking.node_id,
                    units=leftover,
                    period=DateTimeTZRange(now, end, "[)"),
                )
            else:
                rest.units = leftover
                rest.save(update_fields=["units"])
        elif rest is not None:
            rest.delete()
        GpuBooking.objects.create(
            allocation=claim,
            gpu_id=booking.gpu_id,
            node_id=booking.node_id,
            units=NumericRange(lower, lower + need),
            period=DateTimeTZRange(now, end, "[)"),
        )
        activate(allocation=claim, now=now, actor=actor)
        return claim
    return None
