"""Quotas: concurrent GPUs by model and GPU-hours per month. Refusals say which quota and by
how much."""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Sum

from fabric.capacity.engine import SLICE_UNITS
from fabric.models import Allocation, AllocationState, Quota
from fabric.states import HOLDING
from portal.models import Organization


class QuotaExceeded(ValidationError):
    pass


def _gpus(units: float) -> str:
    value = units / SLICE_UNITS
    return f"{value:g}" if value == int(value) else f"{value:.2f}"


def month_bounds(now: datetime) -> tuple[datetime, datetime]:
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start, end


def _hours_booked(organization: Organization, gpu_model: str, start, end, exclude) -> float:
    """GPU-hours the organization's bookings hold inside [start, end)."""
    sql = """
        SELECT COALESCE(SUM(
            EXTRACT(EPOCH FROM (
                LEAST(COALESCE(upper(b.period), %(end)s), %(end)s)
                - GREATEST(lower(b.period), %(start)s)
            )) * (upper(b.units) - lower(b.units))
        ), 0) / 3600.0 / %(per_gpu)s
        FROM fabric_gpubooking b JOIN fabric_allocation a ON a.id = b.allocation_id
        WHERE a.organization_id = %(org)s AND a.id <> %(exclude)s
          AND (%(model)s = '' OR a.gpu_model = %(model)s)
          AND b.period && tstzrange(%(start)s, %(end)s)
    """
    params = {
        "start": start,
        "end": end,
        "org": organization.pk,
        "model": gpu_model,
        "exclude": exclude or 0,
        "per_gpu": SLICE_UNITS,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return float(cursor.fetchone()[0])


def quotas_for(*, organization: Organization, gpu_model: str) -> list[Quota]:
    """The quotas that bind `gpu_model` for the organization: its own and the all-models one."""
    return list(Quota.objects.filter(organization=organization, gpu_model__in=[gpu_model, ""]))


def quota_check(
    *,
    organization: Organization,
    gpu_model: str,
    gpu_units: int,
    starts_at: datetime,
    ends_at: datetime | None,
    now: datetime,
    exclude: int | None = None,
    quotas: list[Quota] | None = None,
) -> None:
    """Raise QuotaExceeded if holding `gpu_units` more over [starts_at, ends_at) breaks a quota.
    `quotas` (from `quotas_for`) lets a caller read them before it takes the model's lock."""
    if quotas is None:
        quotas = quotas_for(organization=organization, gpu_model=gpu_model)
    for quota in quotas:
        label = f"{quota.gpu_model} " if quota.gpu_model else ""
        model = quota.gpu_model
        if quota.max_gpus is not None:
            held = (
                Allocation.objects.filter(
                    organization=organization, state__in=(*HOLDING, AllocationState.QUEUED)
                )
                .filter(**({"gpu_model": model} if model else {}))
                .exclude(pk=exclude)
                .aggregate(units=Sum("gpu_units"))["units"]
                or 0
            )
            over = held + gpu_units - quota.max_gpus * SLICE_UNITS
            if over > 0:
                raise QuotaExceeded(
                    f"Over the quota of {quota.max_gpus} concurrent {label}GPUs: you hold "
                    f"{_gpus(held)} and asked for {_gpus(gpu_units)}, {_gpus(over)} over."
                )
        if quota.gpu_hours_per_month is not None:
            month_start, month_end = month_bounds(now)
            used = _hours_booked(organization, model, month_start, month_end, exclude)
            span_start, span_end = max(starts_at, month_start), min(ends_at or month_end, month_end)
            hours = max((span_end - span_start).total_seconds(), 0) / 3600
            wanted = hours * gpu_units / SLICE_UNITS
            over = used + wanted - quota.gpu_hours_per_month
            if over > 1e-9:
                raise QuotaExceeded(
                    f"Over the quota of {quota.gpu_hours_per_month} {label}GPU-hours a month: "
                    f"{used:,.1f} are used or booked this month and this request needs "
                    f"{wanted:,.1f}, {over:,.1f} over."
                )
