"""Notebooks through a real JupyterHub: the portal launches a named server on an allocated GPU,
the browser signs in to the hub through the portal (no second login) and lands in JupyterLab;
the hub's own API cannot start a server the portal did not launch; stopping frees the GPU."""

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone
from playwright.sync_api import expect

from catalog.models import Order, OrderState
from catalog.notebooks import hub
from catalog.services.notebooks import notebook_restart_run, notebooks_cull
from catalog.services.orders import order_place
from catalog.services.products import product_upsert
from portal.services.audit import Actor
from tests.catalog.lab import customer
from tests.fabric.factories import GPUFactory, NodeFactory
from tests.portal.factories import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
S = OrderState
H100 = "NVIDIA H100 80GB HBM3"


def h100_node():
    node = NodeFactory(gpu_model=H100, state="available")
    for index in range(2):
        GPUFactory(node=node, index=index, model=H100, mig_capable=True)
    return node


def off_loop(fn, **kwargs):
    """Run a service outside this thread: Playwright keeps an event loop running here, and the
    services publish live events through async_to_sync."""

    def run():
        try:
            return fn(**kwargs)
        finally:
            connections.close_all()  # this thread's connection, before the database is dropped

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


def wait_for(order, states, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        order.refresh_from_db()
        if order.state in states and (order.state == S.ACTIVE or order.cleaned_up_at):
            return order
        time.sleep(0.2)
    raise AssertionError(f"order stuck in {order.state}: {order.message}")


def test_a_notebook_launched_from_the_portal_opens_jupyterlab_restarts_and_is_culled_when_idle(
    jupyterhub, live_stack, page
):
    h100_node()
    product = product_upsert(slug="notebook", name="Notebook", kind="notebook", summary="-")
    user = customer()
    order = off_loop(
        order_place, membership=user.memberships.get(), product=product,
        spec={"profile": "h100-1g"}, actor=Actor(user=user),
    )  # fmt: skip
    order = wait_for(order, (S.ACTIVE, S.FAILED))
    assert order.state == S.ACTIVE, order.message
    url = hub.server_url(hub.hub_name(user.pk), f"o{order.pk}")

    page.goto(live_stack.url + "/accounts/login/")
    page.fill("#id_login", user.email)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.goto(url)  # the hub signs the browser in through the portal, then JupyterLab
    expect(page.locator("#jp-main-dock-panel")).to_be_visible(timeout=30_000)
    assert f"/user/u{user.pk}/o{order.pk}/lab" in page.url

    assert off_loop(notebook_restart_run, order_id=order.pk) is True  # same order, same GPU
    page.reload()
    expect(page.locator("#jp-main-dock-panel")).to_be_visible(timeout=30_000)

    assert off_loop(notebooks_cull) == 0  # just used
    later = timezone.now() + timedelta(minutes=61)
    assert off_loop(notebooks_cull, now=later) == 1  # idle past NOTEBOOK_IDLE_MINUTES
    order = wait_for(order, (S.TERMINATED,))
    assert order.message.startswith("Terminated (idle for 60 minutes)")
    assert not hub.server_state(hub.hub_name(user.pk), f"o{order.pk}").exists
    order.allocation.refresh_from_db()
    assert order.allocation.state == "released"


def test_the_hub_api_cannot_start_a_server_the_portal_did_not_launch(jupyterhub, live_stack):
    user = customer()
    name = hub.hub_name(user.pk)
    hub.user_ensure(name)
    with pytest.raises(hub.HubRefused, match="Launch notebooks from the storefront"):
        hub.server_start(name, "rogue", {})
    assert not Order.objects.exists()
