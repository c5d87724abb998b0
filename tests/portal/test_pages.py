import re

import pytest
from django.core.management import call_command

from catalog.models import Product
from catalog.selectors.storefront import purchase_blockers
from portal.models import Membership, User
from tests.portal.factories import PASSWORD, JobFactory, member

pytestmark = pytest.mark.django_db


def test_given_an_anonymous_visitor_then_the_dashboard_redirects_to_sign_in(client):
    response = client.get("/dashboard/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_given_a_member_when_signing_in_then_they_land_on_their_organizations_dashboard(client):
    user = member()
    response = client.post(
        "/accounts/login/", {"login": user.email, "password": PASSWORD}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/dashboard/"
    assert user.memberships.get().organization.name in response.content.decode()


def test_given_many_jobs_then_the_dashboard_uses_a_fixed_number_of_queries(
    client, django_assert_max_num_queries
):
    user = member()
    JobFactory.create_batch(10, organization=user.memberships.get().organization)
    client.force_login(user)
    # session, user, membership, switcher, jobs, products, email, card, credit granted and
    # spent, card shown, availability (GPU models and lease ends; cached besides), and this
    # month's cost so far (rated ledger usage, the running hour of active leases and of
    # reservations' held capacity)
    with django_assert_max_num_queries(17):
        assert client.get("/dashboard/").status_code == 200


def test_given_the_base_layout_then_every_stylesheet_and_script_is_served_locally(client):
    user = member()
    client.force_login(user)
    html = client.get("/dashboard/").content.decode()
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert any("bootstrap" in a for a in assets) and any("htmx" in a for a in assets)
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200, asset
        b"".join(response.streaming_content)


def test_given_the_demo_loaded_twice_then_logins_and_products_exist_once(client):
    call_command("demo_load")
    call_command("demo_load")
    assert User.objects.filter(username__in=["operator", "customer"]).count() == 2
    assert Product.objects.count() == 5
    customer = User.objects.get(username="customer")
    assert customer.memberships.get().role == Membership.Role.OWNER
    assert User.objects.get(username="operator").is_staff
    assert client.login(username="customer", password="storefront-demo")
    assert purchase_blockers(user=customer, membership=customer.memberships.get()) == []
