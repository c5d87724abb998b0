"""Budgets and prepaid balances: alerts at 50, 80 and 100 % (an audit event and an email to
owners and billing members), and at 100 % the other apps are told to stop (a signal: billing
does not know what runs)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.core.mail import send_mail
from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from billing.models import Budget, Card
from billing.rating import running_cost
from billing.selectors import credit_balance
from portal.models import AuditEvent, Membership, Organization
from portal.services.audit import Actor, audit_record

LEVELS = (50, 80, 100)
# Sent with `organization` and `reason` when a budget or the prepaid balance is used up.
spending_limit_reached = Signal()


def _month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _tell(organization: Organization, subject: str, message: str) -> None:
    recipients = Membership.objects.filter(
        organization=organization, role__in=["owner", "billing"]
    ).values_list("user__email", flat=True)
    send_mail(subject=subject, message=message, from_email=None, recipient_list=list(recipients))


def _limit(organization: Organization) -> tuple[Budget | None, Decimal | None]:
    """The limit that applies: the budget if set; else, without a card, the prepaid credit."""
    budget = Budget.objects.filter(organization=organization).first()
    if budget is not None:
        return budget, budget.amount
    if not Card.objects.filter(organization=organization, is_default=True).exists():
        # Credit is spent when invoices are raised; until then this month's usage draws on it.
        balance = credit_balance(organization=organization)
        return None, balance if balance > 0 else None
    return None, None


def spending_allowance(
    *, organization: Organization, now: datetime | None = None
) -> Decimal | None:
    """What the organization may still spend this month before its budget (or, without a card,
    its prepaid credit) is used up; None when nothing limits it."""
    now = now or timezone.now()
    _, limit = _limit(organization)
    if limit is None:
        budgeted = Budget.objects.filter(organization=organization).exists()
        has_card = Card.objects.filter(organization=organization, is_default=True).exists()
        return None if budgeted or has_card else Decimal(0)
    spent = running_cost(organization=organization, start=_month_start(now), end=now)
    return max(limit - spent, Decimal(0))


@transaction.atomic
def budget_check(*, organization: Organization, now: datetime | None = None) -> int:
    """Alert once per level per month; return the highest level reached (0 if none)."""
    now = now or timezone.now()
    month = _month_start(now)
    spent = running_cost(organization=organization, start=month, end=now)
    budget, limit = _limit(organization)
    if limit is None or limit <= 0:
        return 0
    percent = spent / limit * 100
    reached = max((level for level in LEVELS if percent >= level), default=0)
    if budget is not None:
        budget = Budget.objects.select_for_update().get(pk=budget.pk)
        if budget.month != month.date():
            budget.month, budget.alerted_percent = month.date(), 0
        already = budget.alerted_percent
    else:
        already = 0 if reached == 0 else _already_alerted(organization, month)
    if reached <= already:
        return reached
    what = "budget" if budget is not None else "prepaid balance"
    audit_record(
        action=AuditEvent.Action.BUDGET_ALERT,
        actor=Actor.system("task"),
        organization=organization,
        target=f"{reached}% of the {what}",
        detail={"spent": str(spent), "limit": str(limit), "month": f"{month:%Y-%m}"},
    )
    message = f"You have used {reached}% of your {what} for {month:%B %Y}: ${spent} of ${limit}."
    if reached >= 100 and (budget is None or budget.stop_at_limit):
        message += " Running work is being stopped: notebooks now, servers after a grace period."
        transaction.on_commit(
            lambda: spending_limit_reached.send(
                sender=Budget, organization=organization, reason=f"{what} used up"
            )
        )
    transaction.on_commit(lambda: _tell(organization, f"{reached}% of your {what} used", message))
    if budget is not None:
        budget.alerted_percent = reached
        budget.save(update_fields=["month", "alerted_percent"])
    return reached


def _already_alerted(organization: Organization, month: datetime) -> int:
    """For prepaid balances (no Budget row): the highest level already logged this month."""
    targets = AuditEvent.objects.filter(
        organization=organization, action=AuditEvent.Action.BUDGET_ALERT, created_at__gte=month
    ).values_list("target", flat=True)
    return max((int(t.split("%")[0]) for t in targets), default=0)


def budgets_run(*, now: datetime | None = None) -> int:
    checked = 0
    for organization in Organization.objects.filter(usage_events__isnull=False).distinct():
        budget_check(organization=organization, now=now)
        checked += 1
    return checked
