"""A token's scope binds whoever made it, staff included: a read token writes nothing through
any endpoint. The write endpoints are taken from the API schema, so a new one is covered the
day it appears."""

import re

import pytest
from drf_spectacular.generators import SchemaGenerator

from fabric.models import Site
from portal.models import ApiToken
from portal.services.audit import Actor
from portal.services.tokens import api_token_create
from tests.portal.factories import member

pytestmark = pytest.mark.django_db

WRITES = {"post", "put", "patch", "delete"}


def _write_operations() -> list[tuple[str, str]]:
    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    return sorted(
        (method.upper(), re.sub(r"\{[^}]+\}", "1", path))
        for path, operations in paths.items()
        for method, operation in operations.items()
        if method in WRITES
        and any("bearerAuth" in requirement for requirement in operation.get("security", []))
    )


WRITE_OPERATIONS = _write_operations()


def _staff_token(scope: str) -> str:
    operator = member(verified=True)
    operator.is_staff = operator.is_superuser = True
    operator.save(update_fields=["is_staff", "is_superuser"])
    return api_token_create(
        by=operator.memberships.get(), name="ops", scope=scope, expires_at=None,
        actor=Actor(user=operator),
    )[1]  # fmt: skip


def test_the_schema_lists_the_write_endpoints_to_check():
    assert ("POST", "/api/v1/inventory/sites/") in WRITE_OPERATIONS
    assert ("POST", "/api/v1/orders/") in WRITE_OPERATIONS
    assert len(WRITE_OPERATIONS) > 40


@pytest.mark.parametrize(("method", "path"), WRITE_OPERATIONS)
def test_given_a_staff_read_token_then_every_write_endpoint_answers_403_json(client, method, path):
    auth = f"Bearer {_staff_token(ApiToken.Scope.READ)}"
    response = client.generic(
        method, path, "{}", content_type="application/json", HTTP_AUTHORIZATION=auth
    )
    assert response.status_code == 403, (method, path, response.content)
    assert "read-only" in response.json()["detail"]


def test_given_a_staff_read_token_then_creating_a_site_is_refused_and_nothing_is_saved(client):
    auth = f"Bearer {_staff_token(ApiToken.Scope.READ)}"
    response = client.post("/api/v1/inventory/sites/", {"name": "dc9"}, HTTP_AUTHORIZATION=auth)
    assert response.status_code == 403
    assert not Site.objects.filter(name="dc9").exists()
    assert client.get("/api/v1/inventory/sites/", HTTP_AUTHORIZATION=auth).status_code == 200


def test_given_a_staff_read_write_token_then_creating_a_site_works(client):
    auth = f"Bearer {_staff_token(ApiToken.Scope.READ_WRITE)}"
    response = client.post("/api/v1/inventory/sites/", {"name": "dc9"}, HTTP_AUTHORIZATION=auth)
    assert response.status_code == 201
    assert Site.objects.filter(name="dc9").exists()
