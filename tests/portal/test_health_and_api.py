import re

import pytest

pytestmark = pytest.mark.django_db


def test_healthz_given_every_peer_up_then_200_with_each_check_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True
    assert set(body["checks"]) == {"database", "broker", "redis", "channel_layer"}
    assert all(check["ok"] for check in body["checks"].values())


def test_healthz_given_an_unreachable_broker_then_503_naming_the_broker(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["broker"]["ok"] is False
    assert "Error" in checks["broker"]["error"]
    assert checks["database"]["ok"] is True


def test_openapi_schema_lists_the_jobs_and_products_endpoints(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {"/api/v1/jobs/", "/api/v1/jobs/{id}/", "/api/v1/products/"} <= set(paths)


def test_api_docs_page_loads_its_assets_from_this_server_not_a_cdn(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any("swagger-ui" in asset for asset in assets)
    assert not [a for a in assets if a.startswith(("http:", "https:", "//"))]
    for asset in assets:
        if asset.startswith("/static/"):
            assert client.get(asset).status_code == 200, asset


def test_jobs_api_given_a_member_when_creating_a_job_then_201_and_listed(
    client, django_capture_on_commit_callbacks
):
    from tests.portal.factories import member

    client.force_login(member())
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(
            "/api/v1/jobs/", {"kind": "self_check"}, content_type="application/json"
        )
    assert response.status_code == 201
    assert response.json()["state"] == "queued"
    assert len(callbacks) == 1
    listed = client.get("/api/v1/jobs/").json()["results"]
    assert [job["id"] for job in listed] == [response.json()["id"]]


def test_jobs_api_given_an_unknown_kind_then_400_naming_the_field(client):
    from tests.portal.factories import member

    client.force_login(member())
    response = client.post(
        "/api/v1/jobs/", {"kind": "mine-bitcoin"}, content_type="application/json"
    )
    assert response.status_code == 400
    assert "kind" in response.json()


def test_jobs_api_given_an_anonymous_caller_then_401_asking_for_a_bearer_token(client):
    response = client.get("/api/v1/jobs/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"


def test_the_whole_openapi_schema_generates_without_a_warning():
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")
