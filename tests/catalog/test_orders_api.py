"""Orders through the API and pages: placed with a quote, followed, terminated; the per-node
metadata a booting server reads; another tenant sees none of it; a used-up budget stops bare
metal after its grace period. Steps run in this process against the real peers."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import override_settings
from django.utils import timezone

from billing.models import UsageEvent
from billing.rating import CENT
from billing.services.budgets import spending_limit_reached
from catalog.metadata import metadata_token
from catalog.metering import order_cost
from catalog.models import Order, OrderState, Product
from fabric.services.allocations import lease_sweep
from portal.models import SshKey
from portal.services.audit import Actor
from tests.catalog.factories import ProductFactory
from tests.catalog.lab import GPU_MODEL, bare_metal_lab, customer, with_key
from tests.catalog.test_order_steps import drive, place
from tests.portal.factories import member

pytestmark = pytest.mark.django_db
S = OrderState
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


@pytest.fixture
def lab(switches, bmc_emulator):
    return bare_metal_lab(switches=switches, emulator=bmc_emulator)


def test_given_a_bad_spec_then_each_field_is_named_and_nothing_is_ordered(client, lab):
    user = customer()
    with_key(user)
    client.force_login(user)
    answer = client.post(
        "/api/v1/orders/",
        {"product": "bare-metal", "gpu_model": "NVIDIA B200", "nodes": 2},
        content_type="application/json",
    )
    assert answer.status_code == 400
    assert "not offered as bare metal" in answer.json()["gpu_model"][0]
    answer = client.post(
        "/api/v1/orders/", {"product": "bare-metal", "gpu_model": GPU_MODEL, "nodes": 0},
        content_type="application/json",
    )  # fmt: skip
    assert answer.status_code == 400 and "nodes" in answer.json()
    assert not Order.objects.exists()


def test_given_an_unverified_customer_without_credit_then_ordering_is_refused_with_reasons(
    client, lab
):
    user = member()
    client.force_login(user)
    answer = client.post(
        "/api/v1/orders/", {"product": "bare-metal", "gpu_model": GPU_MODEL},
        content_type="application/json",
    )  # fmt: skip
    assert answer.status_code == 403
    assert "Verify your email" in answer.json()["detail"]
    assert "Add a card or get prepaid credit" in answer.json()["detail"]


def test_given_a_product_off_sale_or_nothing_fulfils_yet_then_400_naming_the_product(client):
    ProductFactory(slug="kubeflow", kind=Product.Kind.KUBEFLOW)  # not sold: not on the menu
    ProductFactory(slug="llm-inference", kind=Product.Kind.INFERENCE)  # sold, but per token
    client.force_login(customer())
    answers = {
        slug: client.post(
            "/api/v1/orders/", {"product": slug, "gpu_model": GPU_MODEL}, "application/json"
        )
        for slug in ("no-such", "kubeflow", "llm-inference")
    }
    assert {answer.status_code for answer in answers.values()} == {400}
    assert answers["no-such"].json() == {"product": ["No such product on sale."]}
    assert answers["kubeflow"].json() == {"product": ["No such product on sale."]}
    (why,) = answers["llm-inference"].json().values()
    assert list(answers["llm-inference"].json()) == ["product"]
    assert why.startswith("Nothing can fulfil 'inference' orders yet")
    assert not Order.objects.exists()


def test_an_order_placed_by_api_is_followed_handed_over_and_terminated_and_others_see_nothing(
    client, lab
):
    user = customer()
    SshKey.objects.create(
        user=user, name="laptop", key_type="ssh-ed25519", bits=256, public_key=KEY,
        fingerprint="SHA256:test",
    )  # fmt: skip
    client.force_login(user)
    answer = client.post(
        "/api/v1/orders/", {"product": "bare-metal", "gpu_model": GPU_MODEL, "nodes": 2},
        content_type="application/json",
    )  # fmt: skip
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["state"] == "placed" and float(body["hourly_quote"]) == 2 * 0.89
    order = drive(Order.objects.get(pk=body["id"]), until=(S.ACTIVE, S.FAILED))
    assert order.state == S.ACTIVE, order.message

    snapshot = client.get(f"/api/v1/orders/{order.pk}/").json()
    assert [s["state"] for s in snapshot["steps"]] == ["done"] * 6
    assert all(s["started_at"] and s["finished_at"] for s in snapshot["steps"])
    assert len(snapshot["handover"]["nodes"]) == 2
    events = client.get(f"/api/v1/orders/{order.pk}/events/").json()
    assert [e["to"] for e in events][-2:] == ["ready", "active"]
    page = client.get(f"/orders/{order.pk}/").content.decode()
    assert snapshot["handover"]["nodes"][0]["ssh"] in page

    # The booting server's view: its hostname and the orderer's key, under a per-node token.
    node = order.nodes.first()
    user_data = client.get(f"/metadata/{metadata_token(node)}/user-data")
    assert user_data.status_code == 200 and KEY in user_data.content.decode()
    meta = client.get(f"/metadata/{metadata_token(node)}/meta-data").content.decode()
    assert f"local-hostname: {node.hostname}" in meta
    forged = metadata_token(node)[:-1] + ("0" if metadata_token(node)[-1] != "0" else "1")
    assert client.get(f"/metadata/{forged}/user-data").status_code == 404

    # Another tenant: no page, no API, no websocket, no list entry.
    stranger = member(verified=True)
    client.force_login(stranger)
    assert client.get(f"/orders/{order.pk}/").status_code == 404
    assert client.get(f"/api/v1/orders/{order.pk}/").status_code == 404
    assert client.post(f"/api/v1/orders/{order.pk}/terminate/").status_code == 404
    assert client.get("/api/v1/orders/").json()["results"] == []

    client.force_login(user)
    assert client.post(f"/api/v1/orders/{order.pk}/terminate/").json()["state"] == "stopping"
    order = drive(order, until=(S.TERMINATED,))
    assert client.get(f"/metadata/{metadata_token(node)}/user-data").status_code == 404
    window = (order.ended_at - order.ready_at).total_seconds()
    billed = sum(e.quantity for e in UsageEvent.objects.filter(organization=order.organization))
    assert abs(float(billed) - 2 * window) < 0.01
    hours = 2 * window / 3600
    assert abs(order_cost(order=order) - Decimal("0.89") * Decimal(str(hours))) <= CENT


def test_given_a_used_up_budget_then_bare_metal_stops_after_its_grace_period(lab):
    user = customer()
    order = drive(place(user, lab[2], nodes=1), until=(S.ACTIVE, S.FAILED))
    assert order.state == S.ACTIVE, order.message

    with override_settings(BARE_METAL_GRACE_SECONDS=60):
        spending_limit_reached.send(
            sender=None, organization=order.organization, reason="budget used up"
        )
    order.allocation.refresh_from_db()
    assert order.allocation.ends_at <= timezone.now() + timedelta(seconds=60)
    assert lease_sweep(now=timezone.now())["reclaimed"] == 0  # still in its grace period
    assert lease_sweep(now=timezone.now() + timedelta(seconds=61))["reclaimed"] == 1
    order.refresh_from_db()
    assert order.state == S.STOPPING and order.ended_at
    order = drive(order, until=(S.TERMINATED,))
    assert order.cleaned_up_at and order.network.state == "deleted"


def test_given_a_quota_smaller_than_the_order_then_placing_it_is_refused_with_the_quota(
    client, lab
):
    from fabric.models import Quota

    user = customer()
    with_key(user)
    Quota.objects.create(organization=user.memberships.get().organization, max_gpus=1)
    client.force_login(user)
    answer = client.post(
        "/api/v1/orders/", {"product": "bare-metal", "gpu_model": GPU_MODEL, "nodes": 2},
        content_type="application/json",
    )  # fmt: skip
    assert answer.status_code == 400
    assert "quota" in str(answer.json()).lower()
    assert not Order.objects.exists()


def test_given_a_used_up_budget_then_a_running_notebook_stops_at_once():
    from catalog.services.products import product_upsert
    from fabric.services.allocations import allocation_request
    from tests.catalog.test_notebooks import H100, h100_node

    h100_node()
    user = customer()
    organization = user.memberships.get().organization
    allocation = allocation_request(
        organization=organization, shape="slice", gpu_model=H100, count=1, slice_profile="1g",
        actor=Actor(user=user),
    )  # fmt: skip
    product = product_upsert(slug="notebook", name="Notebook", kind="notebook", summary="-")
    order = Order.objects.create(
        organization=organization, created_by=user, product=product, offering="notebook",
        spec={"profile": "h100-1g"}, hourly_quote=1, state=S.ACTIVE, allocation=allocation,
        ready_at=timezone.now(),
    )  # fmt: skip
    spending_limit_reached.send(sender=None, organization=organization, reason="budget used up")
    order.refresh_from_db()
    assert order.state == S.STOPPING and order.ended_at
    assert order.message.startswith("budget used up")


def test_a_notebook_is_ordered_through_the_api_with_its_profile(client):
    """The API takes every orderable product: a notebook by its profile (no GPU model)."""
    ProductFactory(slug="jupyter-notebook", kind=Product.Kind.NOTEBOOK)
    ProductFactory(slug="bare-metal", kind=Product.Kind.BARE_METAL)
    user = customer()
    with_key(user)
    client.force_login(user)
    wrong = client.post(
        "/api/v1/orders/", {"product": "jupyter-notebook", "profile": "k80"},
        content_type="application/json",
    )  # fmt: skip
    assert wrong.status_code == 400 and "Choose one of" in wrong.json()["profile"][0]
    placed = client.post(
        "/api/v1/orders/", {"product": "jupyter-notebook", "profile": "a100"},
        content_type="application/json",
    )  # fmt: skip
    assert placed.status_code == 201, placed.content
    assert Order.objects.get().spec["profile"] == "a100"
    no_model = client.post(
        "/api/v1/orders/", {"product": "bare-metal", "nodes": 1}, content_type="application/json"
    )
    assert no_model.status_code == 400 and no_model.json()["gpu_model"] == ["Choose a GPU model."]
