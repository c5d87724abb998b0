"""Capacity through the API, as a tenant: gated by the purchase checks, priced, scoped."""

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import CreditGrant
from fabric.testbed.fleet import fleet_generate
from portal.services.audit import Actor
from tests.portal.factories import member, organization_of

pytestmark = pytest.mark.django_db
H100 = "NVIDIA H100 80GB HBM3"


@pytest.fixture
def fleet():
    fleet_generate(sites=1, nodes_per_site=32, actor=Actor.system("task"), spare_fraction=0)


@pytest.fixture
def tenant(client):
    user = member(verified=True)
    CreditGrant.objects.create(organization=organization_of(user), amount=Decimal("100"))
    client.force_login(user)
    return user


def test_a_tenant_requests_extends_and_releases_capacity(client, fleet, tenant):
    response = client.post(
        "/api/v1/capacity/allocations/",
        {"shape": "gpu", "gpu_model": H100, "count": 2, "lease_hours": 2},
        content_type="application/json",
    )
    assert response.status_code == 201, response.json()
    allocation = response.json()
    assert allocation["state"] == "active"
    later = (timezone.now() + timedelta(hours=5)).isoformat()
    extended = client.post(
        f"/api/v1/capacity/allocations/{allocation['id']}/extend/",
        {"ends_at": later},
        content_type="application/json",
    )
    assert extended.status_code == 200 and extended.json()["ends_at"][:16] == later[:16]
    grow = client.post(
        f"/api/v1/capacity/allocations/{allocation['id']}/grow/", {"nodes": 1},
        content_type="application/json",
    )  # fmt: skip
    assert grow.status_code == 400 and "whole-node" in grow.json()["detail"][0]
    released = client.post(f"/api/v1/capacity/allocations/{allocation['id']}/release/")
    assert released.json()["state"] == "released"
    assert [a["id"] for a in client.get("/api/v1/capacity/allocations/").json()["results"]] == [
        allocation["id"]
    ]


def test_without_a_way_to_pay_the_request_is_refused_with_the_reasons(client, fleet):
    client.force_login(member())
    response = client.post(
        "/api/v1/capacity/allocations/",
        {"shape": "node", "gpu_model": H100, "count": 1},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert response.json() == {
        "detail": "Verify your email address. Add a card or get prepaid credit."
    }


def test_a_tenant_never_sees_another_tenants_allocation(client, fleet, tenant):
    other = member(verified=True)
    CreditGrant.objects.create(organization=organization_of(other), amount=Decimal("100"))
    client.force_login(other)
    mine = client.post(
        "/api/v1/capacity/allocations/", {"shape": "node", "gpu_model": H100, "count": 1},
        content_type="application/json",
    ).json()  # fmt: skip
    client.force_login(tenant)
    assert client.get(f"/api/v1/capacity/allocations/{mine['id']}/").status_code == 404
    assert client.post(f"/api/v1/capacity/allocations/{mine['id']}/release/").status_code == 404


def test_a_reservation_is_confirmed_with_its_price_or_answered_with_windows(client, fleet, tenant):
    start = (timezone.now() + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    body = {
        "gpu_model": H100, "count": 8, "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=3)).isoformat(), "weekly_occurrences": 2,
    }  # fmt: skip
    booked = client.post("/api/v1/capacity/reservations/", body, content_type="application/json")
    assert booked.status_code == 201, booked.json()
    assert booked.json()["price"] == "119.52"  # 8 GPUs x 3 h x 2 weeks x $2.49
    everything = {**body, "count": 32 * 8, "weekly_occurrences": 1}
    full = client.post(
        "/api/v1/capacity/reservations/", everything, content_type="application/json"
    )
    assert full.status_code == 409
    assert "are not free" in full.json()["detail"]
    assert full.json()["suggestions"][0]["price"] == "1912.32"
    cancelled = client.post(f"/api/v1/capacity/reservations/{booked.json()['id']}/cancel/")
    assert cancelled.json()["state"] == "cancelled"


def test_anyone_sees_availability_and_the_storefront_shows_it(client, fleet):
    rows = client.get("/api/v1/capacity/availability/").json()
    nodes = next(r for r in rows if r["gpu_model"] == H100 and r["shape"] == "node")
    assert nodes["available_now"] == 32
    assert H100 in client.get("/").content.decode()


def test_a_raw_allocation_says_it_is_billed_from_booking_and_the_ledger_bills_just_that(
    client, fleet, tenant, django_assert_max_num_queries
):
    from billing.rating import charges
    from catalog.metering import meter_usage

    response = client.post(
        "/api/v1/capacity/allocations/",
        {"shape": "gpu", "gpu_model": H100, "count": 2, "lease_hours": 1},
        content_type="application/json",
    )
    held = response.json()
    assert held["billed"] is True and held["hourly_price"] == "4.98"  # 2 GPUs x $2.49
    since = datetime.fromisoformat(held["billed_since"])
    assert abs(since - datetime.fromisoformat(held["starts_at"])) < timedelta(seconds=1)
    assert "without an order" in held["billing"] and "used or not" in held["billing"]
    # Nothing runs on it, and it is billed all the same: the hour it held, at that rate.
    meter_usage(now=since + timedelta(hours=2))
    (line,) = charges(
        organization=organization_of(tenant), start=since - timedelta(hours=1),
        end=since + timedelta(hours=2),
    )  # fmt: skip
    assert line.amount == Decimal(held["hourly_price"])
    for _ in range(3):
        client.post(
            "/api/v1/capacity/allocations/", {"shape": "gpu", "gpu_model": H100, "count": 1},
            content_type="application/json",
        )  # fmt: skip
    with django_assert_max_num_queries(12):  # the page's billing terms come in a few queries
        listed = client.get("/api/v1/capacity/allocations/").json()["results"]
    assert len(listed) == 4 and all(a["billed"] and a["billed_since"] for a in listed)
    assert (
        client.get(f"/api/v1/capacity/allocations/{held['id']}/").json()["billing"]
        == (held["billing"])
    )
