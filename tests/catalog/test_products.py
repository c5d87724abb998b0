import pytest

from tests.catalog.factories import ProductFactory

pytestmark = pytest.mark.django_db


def test_given_active_and_retired_products_then_home_and_api_show_only_the_active(client):
    ProductFactory(name="H100 nodes", slug="h100")
    ProductFactory(name="Retired K80", slug="k80", is_active=False)
    home = client.get("/").content.decode()
    assert "H100 nodes" in home
    assert "Retired K80" not in home
    api = client.get("/api/v1/products/").json()["results"]
    assert [product["slug"] for product in api] == ["h100"]
    assert client.get("/api/v1/products/k80/").status_code == 404


def test_given_many_products_then_the_products_api_uses_a_fixed_number_of_queries(
    client, django_assert_max_num_queries
):
    ProductFactory.create_batch(30)
    with django_assert_max_num_queries(2):
        assert client.get("/api/v1/products/?limit=100").status_code == 200


def test_the_menu_shows_only_what_can_be_had_and_each_card_has_its_action(client):
    """Every card can be acted on (Order, Launch, Open) or is not shown: fine-tuning is not
    sold yet, so it is not on the menu; inference opens its page, which shows the prices."""
    import re

    from tests.portal.factories import member

    sellable = ["bare-metal", "ray-cluster", "jupyter-notebook", "llm-inference"]
    kinds = ["bare_metal", "ray", "notebook", "inference", "fine_tuning"]
    for slug, kind in zip([*sellable, "fine-tuning"], kinds, strict=True):
        ProductFactory(slug=slug, kind=kind, name=f"{slug} product")
    assert "fine-tuning product" not in client.get("/").content.decode()
    listed = {p["slug"] for p in client.get("/api/v1/products/").json()["results"]}
    assert listed == set(sellable)
    client.force_login(member(verified=True))
    page = client.get("/dashboard/").content.decode()
    for slug in sellable:
        assert f'id="order-{slug}"' in page, slug
    assert 'href="/inference/" id="order-llm-inference">Open<' in page
    prices = re.sub(r"\s+", " ", client.get("/inference/").content.decode())
    row = re.search(r"<tr><td><code>smollm2-135m-instruct</code></td>(.*?)</tr>", prices)
    assert row and re.findall(r"\$([0-9.]+)", row[1]) == ["0.05", "0.10"]  # per million, in/out
