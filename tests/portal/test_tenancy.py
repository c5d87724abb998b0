"""One tenant never sees another's jobs: not on pages, not in the API, not over websockets."""

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from portal.consumers import CLOSE_NOT_FOUND, CLOSE_UNAUTHENTICATED, JobProgressConsumer
from tests.portal.factories import JobFactory, member

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def alice_and_bobs_job():
    alice = member()
    bob = member()
    return alice, JobFactory(organization=bob.memberships.get().organization)


def test_given_another_tenants_job_when_opening_its_page_then_404(client, alice_and_bobs_job):
    alice, job = alice_and_bobs_job
    client.force_login(alice)
    assert client.get(f"/jobs/{job.pk}/").status_code == 404


def test_given_another_tenants_job_when_reading_it_by_api_then_404(client, alice_and_bobs_job):
    alice, job = alice_and_bobs_job
    client.force_login(alice)
    assert client.get(f"/api/v1/jobs/{job.pk}/").status_code == 404
    assert client.get("/api/v1/jobs/").json()["results"] == []


def _first_frame(user, job_id):
    """Connect as `user`; return (connected, close code, first JSON frame or None)."""

    async def run():
        communicator = WebsocketCommunicator(JobProgressConsumer.as_asgi(), f"/ws/jobs/{job_id}/")
        communicator.scope["user"] = user
        communicator.scope["url_route"] = {"kwargs": {"job_id": job_id}}
        connected, code = await communicator.connect()
        if not connected:
            return connected, code, None
        frame = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return connected, code, frame

    return async_to_sync(run)()


def test_websocket_given_another_tenants_job_then_closed_as_not_found(alice_and_bobs_job):
    alice, job = alice_and_bobs_job
    assert _first_frame(alice, job.pk) == (False, CLOSE_NOT_FOUND, None)


def test_websocket_given_an_anonymous_visitor_then_closed_as_unauthenticated(
    alice_and_bobs_job,
):
    _, job = alice_and_bobs_job
    assert _first_frame(AnonymousUser(), job.pk) == (False, CLOSE_UNAUTHENTICATED, None)


def test_websocket_given_own_job_then_the_current_state_arrives_first(alice_and_bobs_job):
    _, job = alice_and_bobs_job
    bob = job.organization.memberships.get().user
    connected, _, frame = _first_frame(bob, job.pk)
    assert connected
    assert frame == {"id": job.pk, "state": "queued", "progress": 0, "message": ""}
