"""Budgets and prepaid balances: alerts at 50, 80 and 100 % once each, and at 100 % running
work is stopped — GPUs at once, bare metal after a grace period."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from billing.models import Budget, CreditGrant
from billing.services.budgets import budget_check
from billing.services.ledger import usage_record
from fabric.services.allocations import allocation_request
from fabric.testbed.fleet import fleet_generate
from portal.models import AuditEvent
from portal.services.audit import Actor
from tests.portal.factories import member, organization_of

pytestmark = pytest.mark.django_db
H100 = "NVIDIA H100 80GB HBM3"
SYSTEM = Actor.system("task")


def _spend(org, dollars: str, key: str):
    """Record H100 GPU time worth `dollars` at $2.49 a GPU-hour."""
    now = timezone.now()
    start = max(now - timedelta(minutes=5), now.replace(day=1, hour=0, minute=0, second=0))
    seconds = Decimal(dollars) / Decimal("2.49") * 3600
    usage_record(
        organization=org, idempotency_key=key, meter="gpu_seconds", item=f"{H100}:gpu",
        quantity=seconds, started_at=start, ended_at=start, source="test",
    )  # fmt: skip


def test_alerts_come_once_at_each_level(django_capture_on_commit_callbacks):
    owner = member()
    org = organization_of(owner)
    Budget.objects.create(organization=org, amount=Decimal("10.00"))
    levels = []
    for key, dollars in (("a", "4.00"), ("b", "1.50"), ("c", "0.10"), ("d", "2.60")):
        _spend(org, dollars, key)
        with django_capture_on_commit_callbacks(execute=True):
            levels.append(budget_check(organization=org))
    assert levels == [0, 50, 50, 80]
    assert [m.subject for m in mail.outbox] == [
        "50% of your budget used",
        "80% of your budget used",
    ]
    assert mail.outbox[0].to == [owner.email]
    assert AuditEvent.objects.filter(action="budget_alert").count() == 2


def test_at_100_percent_gpus_stop_now_and_bare_metal_after_a_grace_period(
    django_capture_on_commit_callbacks, settings
):
    settings.BARE_METAL_GRACE_SECONDS = 1800
    fleet_generate(sites=1, nodes_per_site=32, actor=SYSTEM, spare_fraction=0)
    org = organization_of(member())
    gpus = allocation_request(organization=org, shape="gpu", gpu_model=H100, count=2, actor=SYSTEM)
    servers = allocation_request(
        organization=org, shape="node", gpu_model=H100, count=1, actor=SYSTEM
    )
    Budget.objects.create(organization=org, amount=Decimal("5.00"))
    _spend(org, "5.00", "all")
    with django_capture_on_commit_callbacks(execute=True):
        assert budget_check(organization=org) == 100
    gpus.refresh_from_db()
    servers.refresh_from_db()
    assert gpus.state == "released"
    assert servers.state == "active" and servers.detail.startswith("stopping:")
    remaining = servers.ends_at - timezone.now()
    assert timedelta(minutes=29) < remaining <= timedelta(minutes=30)
    assert "Running work is being stopped" in mail.outbox[-1].body


def test_a_prepaid_organization_without_a_card_stops_when_its_credit_is_used(
    django_capture_on_commit_callbacks,
):
    org = organization_of(member())
    CreditGrant.objects.create(organization=org, amount=Decimal("20.00"))
    _spend(org, "10.00", "half")
    with django_capture_on_commit_callbacks(execute=True):
        assert budget_check(organization=org) == 50
    _spend(org, "10.00", "rest")
    with django_capture_on_commit_callbacks(execute=True):
        assert budget_check(organization=org) == 100
    assert mail.outbox[-1].subject == "100% of your prepaid balance used"
