import pytest

from portal.celery import app as celery_app


@pytest.fixture
def tasks_in_process():
    """Celery tasks queued during the test run at once in this process (retries too), for tests
    that read what a task did in this process, such as mail.outbox; errors propagate."""
    conf = celery_app.conf
    before = conf.task_always_eager, conf.task_eager_propagates
    conf.task_always_eager = conf.task_eager_propagates = True
    yield
    conf.task_always_eager, conf.task_eager_propagates = before
