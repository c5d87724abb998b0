"""Account mail leaves from a Celery worker: a mail server that refuses costs the visitor
nothing (a redirect, the account saved) while the worker retries; a working one delivers the
verification link."""

import contextlib
import os
import re
import socket
import threading
import time
import uuid

import pytest
from django.core import mail

from portal import stack
from portal.celery import app as celery_app
from portal.models import User
from portal.tasks import ping

pytestmark = pytest.mark.django_db


class RefusingSmtpServer:
    """A real SMTP peer on a loopback port that greets every connection with "554 no service"
    (RFC 5321 3.1: the server will not take mail) and hangs up; it counts the connections."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            with connection:
                self.connections += 1
                connection.sendall(b"554 127.0.0.1 no mail service here\r\n")

    def wait_for(self, connections: int, timeout: float = 90) -> int:
        deadline = time.monotonic() + timeout
        while self.connections < connections and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.connections

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join()
        self.listener.close()


@pytest.fixture
def refusing_smtp():
    server = RefusingSmtpServer()
    yield server
    server.stop()


@pytest.fixture
def worker_mailing_to(refusing_smtp, settings, tmp_path):
    """This process and a Celery worker process of its own (on a queue no other worker takes:
    the live stack's worker may be running) send mail over SMTP to the refusing server."""
    smtp = {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": refusing_smtp.port,
    }
    for name, value in smtp.items():
        setattr(settings, name, value)
    queue = f"mail-test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, **{k: str(v) for k, v in smtp.items()}, "STOREFRONT_QUEUE_PREFIX": queue}
    previous = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = queue
    with contextlib.ExitStack() as processes:
        stack.spawn(
            processes,
            [stack.BIN / "celery", "-A", "portal", "worker", "--pool=solo", "--loglevel=info",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            env=env, log=tmp_path / "worker.log",
        )  # fmt: skip
        assert ping.delay(1.0).get(timeout=60) == 1.0  # the worker takes this queue
        yield refusing_smtp
    celery_app.conf.task_default_queue = previous


def _signup(client, email):
    return client.post(
        "/accounts/signup/",
        {"email": email, "password1": "a-Long-passphrase-42", "password2": "a-Long-passphrase-42"},
    )


def test_given_a_mail_server_that_refuses_when_signing_up_then_redirected_and_the_worker_retries(
    client, worker_mailing_to, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = _signup(client, "refused@example.com")

    assert response.status_code == 302
    assert User.objects.filter(email="refused@example.com").exists()
    # The worker's first attempt and two retries, each a new connection the server refused.
    assert worker_mailing_to.wait_for(3) >= 3


def test_given_a_working_mail_server_when_signing_up_then_the_task_delivers_the_link(
    client, tasks_in_process, django_capture_on_commit_callbacks, settings
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    with django_capture_on_commit_callbacks(execute=True):
        response = _signup(client, "works@example.com")
        assert mail.outbox == []  # the request only queued it

    assert response.status_code == 302
    (message,) = mail.outbox
    assert message.to == ["works@example.com"]
    assert message.subject.startswith("[GPU Storefront] ")
    assert re.search(r"http://testserver/accounts/confirm-email/\S+/", message.body)
