"""Bad input gets a 4xx in JSON, never a 500 page: bounded pagination on every list, one
exception handler for whatever a view, a service or the database raises, and JSON for the
errors Django answers itself under /api/."""

import pytest
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.db import OperationalError, connection, transaction
from django.test import Client
from django.urls import include, path
from psycopg_pool import ConnectionPool, PoolTimeout
from rest_framework import exceptions, permissions
from rest_framework.views import APIView

from portal import urls as portal_urls
from portal.api.exceptions import api_answers
from tests.catalog.factories import ProductFactory
from tests.portal.factories import JobFactory, member, organization_of

pytestmark = pytest.mark.django_db

LISTS = ["/api/v1/products/", "/api/v1/jobs/", "/api/v1/inventory/sites/", "/api/v1/orders/"]


def _raise_database_error():
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT 1 / 0")  # PostgreSQL: division_by_zero, a DataError


def _wait_for_a_connection():
    """What Django raises when its pool has no connection to give within its timeout: a real
    pool's PoolTimeout, wrapped as Django's database wrapper does."""
    with (
        ConnectionPool(
            kwargs=connection.get_connection_params(), min_size=0, max_size=1, open=True
        ) as pool,
        pool.connection(),
    ):
        try:
            pool.getconn(timeout=0.1)
        except PoolTimeout as timeout:
            raise OperationalError(str(timeout)) from timeout


class Refused(Exception):
    """An app's own error, not Django's, that its api package declares an answer for."""


class RefusedBySwitch(Refused):
    pass


api_answers(Refused, lambda error: exceptions.ValidationError({"detail": str(error)}))

RAISED = {
    "fields": ValidationError({"count": "Too many."}),
    "message": ValidationError("Not now."),
    "denied": PermissionDenied("Not yours."),
    "missing": ObjectDoesNotExist(),
    "app": RefusedBySwitch("The switch said no."),
    "bug": RuntimeError("secret internals"),
}


class Raising(APIView):
    """Raises what a service or the database might, as the view it calls would let through."""

    permission_classes = [permissions.AllowAny]

    def get(self, request, kind):
        if kind == "database":
            _raise_database_error()
        if kind == "no-connection":
            _wait_for_a_connection()
        raise RAISED[kind]


def broken(request):
    """A plain Django view under /api/ that fails."""
    raise RuntimeError("outside DRF")


urlpatterns = [
    path("api/v1/raising/<str:kind>/", Raising.as_view()),
    path("api/v1/broken/", broken),
    path("", include(portal_urls)),
]
handler400 = portal_urls.handler400
handler403 = portal_urls.handler403
handler404 = portal_urls.handler404
handler500 = portal_urls.handler500


@pytest.fixture
def signed_in(client):
    owner = member(verified=True)
    JobFactory(organization=organization_of(owner))
    ProductFactory()
    client.force_login(owner)
    client.raise_request_exception = False
    return client


def test_given_a_limit_past_bigint_on_the_public_catalog_then_400_json_naming_the_limit(client):
    ProductFactory()
    response = client.get("/api/v1/products/?limit=99999999999999999999")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert "limit" in response.json()


@pytest.mark.parametrize("url", LISTS)
@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("offset=-1", "offset"),
        ("offset=99999999999999999999", "offset"),
        ("offset=ten", "offset"),
        ("limit=0", "limit"),
        ("limit=-5", "limit"),
        ("limit=501", "limit"),
        ("limit=2.5", "limit"),
    ],
)
def test_given_pagination_out_of_bounds_on_any_list_then_400_json_naming_the_parameter(
    signed_in, url, query, named
):
    response = signed_in.get(f"{url}?{query}")
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    assert list(response.json()) == [named]


def test_given_pagination_within_bounds_then_the_page_asked_for(signed_in):
    for n in range(3):
        ProductFactory(slug=f"extra-{n}")
    page = signed_in.get("/api/v1/products/?limit=2&offset=1").json()
    assert page["count"] == 4 and len(page["results"]) == 2
    assert len(signed_in.get("/api/v1/products/?limit=500").json()["results"]) == 4


def test_the_schema_states_the_pagination_bounds(client):
    parameters = client.get("/api/schema/?format=json").json()["paths"]["/api/v1/products/"]["get"][
        "parameters"
    ]
    bounds = {p["name"]: p["schema"] for p in parameters}
    assert bounds["limit"]["maximum"] == 500 and bounds["limit"]["minimum"] == 1
    assert bounds["offset"]["minimum"] == 0


@pytest.mark.urls(__name__)
@pytest.mark.parametrize(
    ("kind", "status", "body"),
    [
        ("fields", 400, {"count": ["Too many."]}),
        ("message", 400, {"detail": ["Not now."]}),
        ("denied", 403, {"detail": "Not yours."}),
        ("missing", 404, {"detail": "Not found."}),
        ("app", 400, {"detail": "The switch said no."}),
        ("database", 400, {"detail": "A value is out of range or malformed."}),
        ("bug", 500, {"detail": "Internal server error."}),
        ("no-connection", 503, {"detail": "The service is busy; try again in a moment."}),
    ],
)
def test_given_a_django_or_database_error_in_a_view_then_json_with_its_status(
    kind, status, body, caplog
):
    response = Client(raise_request_exception=False).get(f"/api/v1/raising/{kind}/")
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.json() == body
    if kind == "bug":
        assert "secret internals" in caplog.text  # the log has it; the caller does not
    if kind == "no-connection":
        assert response["Retry-After"]


def test_given_an_unknown_url_under_the_api_then_a_json_404(client):
    response = client.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_given_an_unknown_page_outside_the_api_then_still_the_html_404(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert "application/json" not in response["Content-Type"]


@pytest.mark.urls(__name__)
def test_given_a_failure_outside_drf_under_the_api_then_a_json_500():
    response = Client(raise_request_exception=False).get("/api/v1/broken/")
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error."}
