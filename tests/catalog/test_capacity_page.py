"""The capacity page: a reservation answers at once, with its price or the windows that fit."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import CreditGrant
from fabric.testbed.fleet import fleet_generate
from portal.models import Membership
from portal.services.audit import Actor
from tests.portal.factories import member, organization_of

pytestmark = pytest.mark.django_db
H100 = "NVIDIA H100 80GB HBM3"


@pytest.fixture
def tenant(client):
    fleet_generate(sites=1, nodes_per_site=32, actor=Actor.system("task"), spare_fraction=0)
    user = member(verified=True)
    CreditGrant.objects.create(organization=organization_of(user), amount=Decimal("500"))
    client.force_login(user)
    return user


def _window(days=2, hours=3):
    start = (timezone.now() + timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
    return start, start + timedelta(hours=hours)


def test_a_reservation_is_confirmed_with_its_price(client, tenant):
    start, end = _window()
    response = client.post(
        "/capacity/",
        {"gpu_model": H100, "count": 8, "starts_at": f"{start:%Y-%m-%dT%H:%M}",
         "ends_at": f"{end:%Y-%m-%dT%H:%M}", "weekly_occurrences": 1},
        follow=True,
    )  # fmt: skip
    page = response.content.decode()
    assert "Reserved 8 NVIDIA H100 80GB HBM3 GPU(s)" in page and "for $59.76." in page
    assert 'id="reservations"' in page and "8 × NVIDIA H100 80GB HBM3" in page


def test_when_it_does_not_fit_the_nearest_windows_are_offered_with_prices(client, tenant):
    start, end = _window()
    form = {
        "gpu_model": H100, "count": 8, "starts_at": f"{start:%Y-%m-%dT%H:%M}",
        "ends_at": f"{end:%Y-%m-%dT%H:%M}", "weekly_occurrences": 1,
    }  # fmt: skip
    client.post("/capacity/", {**form, "count": 32 * 8})  # the whole pod for that window
    page = client.post("/capacity/", form).content.decode()
    assert "are not free" in page and 'id="suggestions"' in page and "$59.76" in page


def test_a_member_without_the_order_right_cannot_reserve(client, tenant):
    billing_only = member(
        role=Membership.Role.BILLING, organization=organization_of(tenant), verified=True
    )
    client.force_login(billing_only)
    assert client.get("/capacity/").status_code == 403


def test_the_page_says_what_each_hold_and_reservation_costs(client, tenant):
    from fabric.services.allocations import allocation_request

    allocation_request(
        organization=organization_of(tenant), shape="gpu", gpu_model=H100, count=2,
        actor=Actor(user=tenant),
    )  # fmt: skip
    start, end = _window()
    client.post(
        "/capacity/",
        {"gpu_model": H100, "count": 8, "starts_at": f"{start:%Y-%m-%dT%H:%M}",
         "ends_at": f"{end:%Y-%m-%dT%H:%M}", "weekly_occurrences": 1},
    )  # fmt: skip
    page = client.get("/capacity/").content.decode()
    assert 'data-billed="true"' in page and "<strong>$4.98/h</strong> since" in page
    assert "A capacity hold without an order" in page and 'id="hold-terms"' in page
    assert "<td>$59.76</td>" in page and 'id="reservation-terms"' in page
