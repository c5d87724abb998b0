"""Shared fixtures. Peers are real: PostgreSQL and Redis (embedded or from the environment),
a uvicorn web process (as the Procfile runs it), a Celery worker process, and Debian's
Chromium through Playwright."""

import contextlib
import os
import shutil
import uuid
from types import SimpleNamespace
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings

from fabric.testbed.servers.lab import IMAGE_PYTHON
from fabric.testbed.switches import PASSWORD as SWITCH_PASSWORD
from portal import embedded, localstripe, stack
from portal.celery import app as celery_app

# Sync Playwright runs an event loop in the test thread; Django refuses ORM calls there unless told.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
QUEUE_PREFIX = f"test-{os.getpid()}-{uuid.uuid4().hex[:6]}"
SWITCH_VENDORS = ["arista_eos", "cisco_nxos", "juniper_junos", "dell_sonic"]
BMC_POOL = 160


@pytest.fixture(scope="session", autouse=True)
def stripe_peer(tmp_path_factory):
    """localstripe for the whole run, in memory, on a free loopback port; every Stripe call of
    the tests (in this process and in the live stack) goes there."""
    port = embedded.free_port()
    proc = localstripe.start(port=port, state=None, log=tmp_path_factory.mktemp("ls") / "log")
    values = {
        "STRIPE_API_BASE": f"http://127.0.0.1:{port}",
        "STRIPE_SECRET_KEY": localstripe.SECRET_KEY,
        "STRIPE_PUBLISHABLE_KEY": localstripe.PUBLISHABLE_KEY,
        "STRIPE_WEBHOOK_SECRET": "whsec_" + uuid.uuid4().hex,
    }
    with override_settings(
        **values, STRIPE_JS_URL=f"{values['STRIPE_API_BASE']}/js.stripe.com/v3/"
    ):
        yield values
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="session", autouse=True)
def opensm_dir(tmp_path_factory):
    """InfiniBand partition files go to a scratch folder, not var/."""
    path = tmp_path_factory.mktemp("opensm")
    with override_settings(OPENSM_PARTITIONS_DIR=str(path)):
        yield path


@pytest.fixture(scope="session", autouse=True)
def isolated_queues():
    """Give this test run its own Celery queue and channel-layer prefix on the shared Redis, so a
    development worker never takes a test's task (and the reverse)."""
    layers = {
        "default": {
            **settings.CHANNEL_LAYERS["default"],
            "CONFIG": {"hosts": [settings.REDIS_URL], "prefix": f"{QUEUE_PREFIX}:asgi"},
        }
    }
    previous = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = QUEUE_PREFIX
    with override_settings(
        CHANNEL_LAYERS=layers, CELERY_TASK_DEFAULT_QUEUE=QUEUE_PREFIX, QUEUE_PREFIX=QUEUE_PREFIX
    ):
        yield QUEUE_PREFIX
    celery_app.conf.task_default_queue = previous


@pytest.fixture(scope="session")
def switches(tmp_path_factory):
    """One FakeNOS switch per vendor over real SSH, shared by the network and order tests."""
    from fabric.testbed.switches import SwitchSpec, start_switches

    specs = [SwitchSpec(f"{p.split('_')[0]}1", p) for p in SWITCH_VENDORS]
    with start_switches(specs, state_dir=tmp_path_factory.mktemp("switches")) as running:
        yield running


@pytest.fixture(scope="session")
def bmc_emulator(tmp_path_factory):
    """The sushy-tools Redfish emulator with a pool of powered-off systems; each test takes
    fresh ones (bmcs.take), so a power change still pending from an earlier test never lands
    on a later one."""
    from fabric.testbed import bmcs

    emulator = bmcs.start(
        names=[f"pool-{n}" for n in range(BMC_POOL)], port=embedded.free_port(),
        directory=tmp_path_factory.mktemp("bmc"), password=uuid.uuid4().hex,
    )  # fmt: skip
    yield emulator
    emulator.stop()


HUB_CLIENT_SECRET = uuid.uuid4().hex


@pytest.fixture(scope="session")
def hub_process(live_stack, hub_settings, tmp_path_factory):
    """JupyterHub, once per session, signing users in through the live portal; its notebook
    accounts, their homes and its firewall table go with it."""
    from catalog.notebooks import runner

    url = hub_settings["JUPYTERHUB_URL"]
    config = runner.hub_config(
        url=url, portal_url=live_stack.url, token=hub_settings["JUPYTERHUB_API_TOKEN"],
        client_id="jupyterhub", client_secret=HUB_CLIENT_SECRET,
        data=tmp_path_factory.mktemp("hub"), account_prefix=f"sft{uuid.uuid4().hex[:8]}",
    )  # fmt: skip
    hub = runner.start(
        config=config, log=stack.ROOT / "var" / "test-logs" / "jupyterhub.log",
        remove_accounts=True,
    )  # fmt: skip
    yield hub
    hub.stop()


@pytest.fixture
def jupyterhub(hub_process, hub_settings):
    """The session's hub, with its OAuth application present in this test's database."""
    from catalog.notebooks.oauth import hub_application_ensure

    hub_application_ensure(
        redirect_uri=f"{hub_settings['JUPYTERHUB_URL']}/hub/oauth_callback",
        secret=HUB_CLIENT_SECRET,
    )
    return hub_process


@pytest.fixture(autouse=True)
def fresh_cache():
    """Each test gets its own key prefix on the shared Redis cache, so counters such as sign-in
    rate limits start from zero without flushing anything another process uses."""
    caches = {"default": {**settings.CACHES["default"], "KEY_PREFIX": uuid.uuid4().hex}}
    with override_settings(CACHES=caches):
        yield


def _test_database_url() -> str:
    parts = urlsplit(settings.DATABASE_URL)
    return urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))


@pytest.fixture(scope="session")
def hub_settings():
    """Where the tests' JupyterHub will listen and the token it shares with the portal; set for
    this process and the live stack, whether or not a test starts the hub."""
    values = {
        "JUPYTERHUB_URL": f"http://127.0.0.1:{embedded.free_port()}",
        "JUPYTERHUB_API_TOKEN": uuid.uuid4().hex,
    }
    with override_settings(**values):
        yield values


@pytest.fixture(scope="session")
def inference_settings():
    """Where the tests' model backends will listen; the live stack's gateway is pointed there
    whether or not a test starts them."""
    chat, embeddings, dead = embedded.free_port(), embedded.free_port(), embedded.free_port()
    values = {
        # The first chat upstream never answers: every chat request exercises the failover.
        "INFERENCE_CHAT_UPSTREAMS": f"http://127.0.0.1:{dead}/v1,http://127.0.0.1:{chat}/v1",
        "INFERENCE_EMBEDDING_UPSTREAMS": f"http://127.0.0.1:{embeddings}/v1",
    }
    models = {
        "smollm2-135m-instruct": {
            "kind": "chat", "upstreams": values["INFERENCE_CHAT_UPSTREAMS"].split(","),
        },
        "all-minilm-l6-v2": {
            "kind": "embeddings", "upstreams": [values["INFERENCE_EMBEDDING_UPSTREAMS"]],
        },
    }  # fmt: skip
    with override_settings(INFERENCE_MODELS=models):
        yield SimpleNamespace(env=values, chat_port=chat, embeddings_port=embeddings)


@pytest.fixture(scope="session")
def model_servers(inference_settings, tmp_path_factory):
    """SmolLM2 behind llama.cpp's OpenAI server and MiniLM embeddings, once per session."""
    from catalog.gateway.backends import runner

    logs = tmp_path_factory.mktemp("models")
    chat = runner.start_chat(port=inference_settings.chat_port, log=logs / "chat.log")
    embeddings = runner.start_embeddings(
        port=inference_settings.embeddings_port, log=logs / "embeddings.log"
    )
    yield inference_settings
    for process in (chat, embeddings):
        stack.stop(process)


@pytest.fixture(scope="session")
def live_stack(
    django_db_setup,
    django_db_blocker,
    isolated_queues,
    stripe_peer,
    hub_settings,
    inference_settings,
    tmp_path_factory,
):
    """A web server (the Procfile's uvicorn line) and a Celery worker, as real processes, on the
    test database, with localstripe delivering webhooks to it and outgoing mail written to files."""
    mail_dir = tmp_path_factory.mktemp("mail")
    env = {
        **os.environ,
        **stripe_peer,
        **hub_settings,
        **inference_settings.env,
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(mail_dir),
        "DATABASE_URL": _test_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "STOREFRONT_QUEUE_PREFIX": isolated_queues,
        "SELF_CHECK_STEP_SECONDS": "0.4",
        # Orders: poll BMCs often and give up on a dead peer after two quick retries.
        "ORDER_POWER_POLL_SECONDS": "0.5",
        "ORDER_STEP_RETRIES": "2",
        "ORDER_RETRY_BASE_SECONDS": "0.3",
        "DJANGO_DEBUG": "1",
        "PYTHONUNBUFFERED": "1",
        "STOREFRONT_TESTBED_SWITCH_PASSWORD": SWITCH_PASSWORD,
        # Ray clusters on lab servers: the image's Ray, each node small (2 cores, 24 GB here).
        "RAY_PYTHON": IMAGE_PYTHON,
        "RAY_MAX_CPUS": "1",
        "RAY_OBJECT_STORE_MAX_BYTES": str(100 * 2**20),
    }
    with contextlib.ExitStack() as processes:
        url, web, worker = stack.web_and_worker(
            processes, env=env, logs=stack.ROOT / "var" / "test-logs"
        )
        # The worker is ready once it runs a task from this run's queue.
        from portal.tasks import ping

        assert ping.delay(1.0).get(timeout=60) == 1.0
        localstripe.register_webhook(
            api_base=stripe_peer["STRIPE_API_BASE"],
            name=isolated_queues,
            url=f"{url}/billing/stripe/webhook/",
            secret=stripe_peer["STRIPE_WEBHOOK_SECRET"],
        )
        yield SimpleNamespace(url=url, env=env, web=web, worker=worker, mail_dir=mail_dir)


@pytest.fixture(scope="module")
def browser():
    """Chromium for one module: sync Playwright keeps an event loop running in this thread while
    it is open, which would break async_to_sync in the tests that run after it."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()
