"""A saturated web server answers 503 with Retry-After and a JSON body, never a 500: requests
beyond its threads wait in the event loop for a while, and a pool with no connection to spare
answers as soon as its timeout runs out. The server is the Procfile's, as a real process, with
a tiny pool whose connections are held by requests blocked on a GPU model's lock."""

import contextlib
import threading
import time
from decimal import Decimal

import httpx
import pytest
from django.db import connection, transaction

from billing.models import CreditGrant
from fabric.services.placement import lock_model
from portal import stack
from portal.models import ApiToken
from portal.services.audit import Actor
from portal.services.tokens import api_token_create
from tests.fabric.factories import GPUFactory
from tests.portal.factories import member

pytestmark = pytest.mark.django_db(transaction=True)
MODEL = "H100-SXM5-80GB"  # the factories' GPU model


@pytest.fixture
def token():
    user = member(verified=True)
    membership = user.memberships.get()
    CreditGrant.objects.create(organization=membership.organization, amount=Decimal("100"))
    GPUFactory(node__gpu_model=MODEL, node__state="available")
    _, secret = api_token_create(
        by=membership, name="load", scope=ApiToken.Scope.READ_WRITE, expires_at=None,
        actor=Actor(user=user),
    )  # fmt: skip
    return secret


@contextlib.contextmanager
def model_locked(model: str):
    """A placement of `model` in progress elsewhere: its lock held in an open transaction."""
    held, done = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                lock_model(model)
                held.set()
                done.wait(60)
        finally:
            connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait(10)
    try:
        yield
    finally:
        done.set()
        thread.join()


def _waiting_on_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        return cursor.fetchone()[0]


def _saturate(url: str, token: str, blocked: int) -> tuple[list, list]:
    """`blocked` allocation requests, each stuck on the model's lock inside the server; returns
    their threads and the list their answers go to once they finish."""
    answers: list = []

    def place() -> None:
        answers.append(
            httpx.post(
                f"{url}/api/v1/capacity/allocations/",
                json={"shape": "gpu", "gpu_model": MODEL, "count": 1, "lease_hours": 1},
                headers={"Authorization": f"Bearer {token}"}, timeout=60,
            ).status_code
        )  # fmt: skip

    threads = [threading.Thread(target=place) for _ in range(blocked)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while _waiting_on_locks() < blocked:
        assert time.monotonic() < deadline, "the requests never reached the model's lock"
        time.sleep(0.05)
    return threads, answers


@pytest.mark.parametrize(
    "limits",
    [
        pytest.param({"DATABASE_POOL_SIZE": "2", "WEB_THREADS": "6"}, id="pool"),
        pytest.param({"DATABASE_POOL_SIZE": "8", "WEB_THREADS": "2"}, id="threads"),
    ],
)
def test_given_a_saturated_server_when_one_more_request_comes_then_it_answers_503_to_retry(
    live_stack, tmp_path, token, limits
):
    env = {**live_stack.env, **limits, "DATABASE_POOL_TIMEOUT": "0.5"}
    headers = {"Authorization": f"Bearer {token}"}
    with contextlib.ExitStack() as processes:
        url, _ = stack.web(processes, env=env, logs=tmp_path)
        with model_locked(MODEL):
            threads, answers = _saturate(url, token, blocked=2)
            busy = httpx.get(f"{url}/api/v1/capacity/quotas/", headers=headers, timeout=30)
            assert busy.status_code == 503, busy.text
            assert busy.headers["Retry-After"] == "1"
            assert busy.json() == {"detail": "The service is busy; try again in a moment."}
        for thread in threads:
            thread.join(30)
        assert answers == [201, 201]
        again = httpx.get(f"{url}/api/v1/capacity/quotas/", headers=headers, timeout=30)
        assert again.status_code == 200
