"""The order pages price through the storefront's selectors: a bare-metal order is quoted
first and placed on confirm, a refusal is shown on the form, and each notebook choice carries
its price."""

from decimal import Decimal

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError

from catalog.models import Order, Product
from catalog.selectors.storefront import notebook_price_list, order_quote
from fabric.models import Quota
from tests.catalog.factories import ProductFactory
from tests.catalog.lab import GPU_MODEL, bare_metal_lab, customer, with_key
from tests.portal.factories import organization_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def lab(switches, bmc_emulator):
    return bare_metal_lab(switches=switches, emulator=bmc_emulator)


def test_a_quote_is_the_cleaned_spec_and_what_it_costs_an_hour(lab):
    quote = order_quote(product=lab[2], spec={"gpu_model": GPU_MODEL, "nodes": "2"})
    assert quote.spec == {"gpu_model": GPU_MODEL, "nodes": 2, "topology": "any"}
    assert quote.hourly_price == Decimal("1.78")  # 2 servers x 1 GPU x $0.89


def test_a_quote_for_a_bad_spec_names_each_bad_field(lab):
    with pytest.raises(ValidationError) as refused:
        order_quote(product=lab[2], spec={"gpu_model": "NVIDIA B200", "nodes": 0})
    assert set(refused.value.message_dict) == {"gpu_model", "nodes"}


def test_the_notebook_price_list_has_every_profile_in_order_with_its_hourly_price():
    prices = notebook_price_list()
    assert [p.profile for p in prices] == list(settings.NOTEBOOK_PROFILES)
    assert [p.label for p in prices] == [p["label"] for p in settings.NOTEBOOK_PROFILES.values()]
    by_profile = {p.profile: p.hourly_price for p in prices}
    # The list prices in settings: a 1g slice is a seventh of the GPU's $2.49, to the cent.
    assert by_profile == {
        "h100-1g": Decimal("0.36"),
        "h100": Decimal("2.49"),
        "a100": Decimal("1.29"),
    }


def test_the_notebook_page_shows_the_price_on_each_choice(client):
    product = ProductFactory(kind=Product.Kind.NOTEBOOK)
    client.force_login(customer())
    page = client.get(f"/orders/new/{product.slug}/").content.decode()
    for price in notebook_price_list():
        assert f"{price.label} — ${price.hourly_price}/h" in page


def test_a_bare_metal_order_is_quoted_first_and_placed_on_confirm(client, lab):
    user = customer()
    key = with_key(user)
    client.force_login(user)
    url = f"/orders/new/{lab[2].slug}/"
    spec = {"gpu_model": GPU_MODEL, "nodes": 2, "topology": "any", "ssh_keys": [key.fingerprint]}
    quoted = client.post(url, spec)
    assert quoted.status_code == 200 and 'id="quote"' in quoted.content.decode()
    assert quoted.context["quote"] == Decimal("1.78") and not Order.objects.exists()
    placed = client.post(url, {**spec, "confirm": "1.78"})
    order = Order.objects.get()
    assert placed.status_code == 302 and placed["Location"] == f"/orders/{order.pk}/"
    assert order.spec == spec and order.hourly_quote == Decimal("1.78")


def test_a_refused_order_is_shown_on_the_form_and_nothing_is_ordered(client, lab):
    user = customer()
    Quota.objects.create(organization=organization_of(user), gpu_model=GPU_MODEL, max_gpus=1)
    key = with_key(user)
    client.force_login(user)
    spec = {"gpu_model": GPU_MODEL, "nodes": 2, "topology": "any", "confirm": "1.78"}
    spec["ssh_keys"] = [key.fingerprint]
    page = client.post(f"/orders/new/{lab[2].slug}/", spec)
    assert page.status_code == 200 and page.context["quote"] is None
    assert page.context["form"].non_field_errors() == [
        "Over the quota of 1 concurrent NVIDIA L40S GPUs: you hold 0 and asked for 2, 1 over."
    ]
    assert 'id="order-error"' in page.content.decode() and not Order.objects.exists()
