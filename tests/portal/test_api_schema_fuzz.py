"""Schemathesis over the OpenAPI schema the app serves at /api/schema/: for every operation a
bounded number of generated requests (valid and invalid), sent in-process through Django's WSGI
application as a customer and as an operator, each answered without a 5xx, with a status code
the schema documents and a body that matches it."""

import json

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from portal.models import ApiToken
from portal.services.audit import Actor
from portal.services.tokens import api_token_create
from tests.catalog.factories import ProductFactory
from tests.fabric.factories import GPUFactory, NodeFactory
from tests.portal.factories import JobFactory, member, organization_of

pytestmark = pytest.mark.django_db

EXAMPLES = 8
_django = WSGIHandler()


def in_test_transaction(environ, start_response):
    """Django's WSGI application as the test client runs it: the request does not close the
    test's database connection (which holds the test's transaction) when it starts or ends."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        response = _django(environ, start_response)
        body = b"".join(response)
        response.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return [body]


def served_schema() -> dict:
    """The schema /api/schema/ serves, generated in-process (collection may not touch the
    database, which every request through the middleware does)."""
    generated = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(generated))


def load(phase: str):
    loaded = schemathesis.openapi.from_dict(served_schema())
    loaded.app = in_test_transaction
    loaded.config.phases.update(phases=[phase])
    # Methods an operation lacks answer DRF's 405; trying each on every path doubles the run.
    loaded.config.phases.coverage.unexpected_methods = set()
    loaded.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], deterministic=True
    )
    return (
        loaded
        # Real side effects outside the database: attaching or detaching nodes pushes
        # configuration to switches over SSH, and deleting a network detaches its nodes.
        .exclude(path_regex=r"^/api/v1/networks/\{id\}/(attach|detach)/$")
        .exclude(path="/api/v1/networks/{id}/", method="DELETE")
        # The node agent authenticates with a node token, not an organization token.
        .exclude(path="/api/v1/agent/report/")
    )


# Hypothesis's examples, valid and invalid, for every operation.
fuzzed = load("fuzzing")
# Every boundary of every parameter (pagination, filters, ids): ~35 requests an operation, so
# for the reads only, where the parameters are.
bounded = load("coverage").include(method="GET")

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


def _token(user, scope=ApiToken.Scope.READ_WRITE) -> str:
    membership = user.memberships.get()
    return api_token_create(
        by=membership, name="fuzz", scope=scope, expires_at=None, actor=Actor(user=user)
    )[1]


@pytest.fixture
def customer_token():
    """A customer with a token that may write, and something in the catalog and their
    organization for the generated ids to land on now and then."""
    user = member(verified=True)
    ProductFactory()
    JobFactory(organization=organization_of(user))
    return _token(user)


@pytest.fixture
def operator_token():
    user = member(verified=True)
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    GPUFactory(node=NodeFactory())
    return _token(user)


@fuzzed.parametrize()
@FUZZ
def test_as_a_customer_every_operation_answers_as_documented_and_never_5xx(case, customer_token):
    case.call_and_validate(headers={"Authorization": f"Bearer {customer_token}"}, checks=CHECKS)


@fuzzed.parametrize()
@FUZZ
def test_as_an_operator_every_operation_answers_as_documented_and_never_5xx(case, operator_token):
    case.call_and_validate(headers={"Authorization": f"Bearer {operator_token}"}, checks=CHECKS)


@bounded.parametrize()
@FUZZ
def test_as_an_operator_every_read_answers_parameters_at_their_bounds_as_documented(
    case, operator_token
):
    case.call_and_validate(headers={"Authorization": f"Bearer {operator_token}"}, checks=CHECKS)
