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
