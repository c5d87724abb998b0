"""A customer with a card and no SSH key adds one on the order form, orders a 2-server
bare-metal cluster in the browser, watches each step's progress arrive over the websocket,
reads the ssh details, then terminates it. Real worker, real switches over SSH, the Redfish
emulator, localstripe."""

import re

import pytest
from playwright.sync_api import expect

from catalog.models import Order
from fabric.services.power import node_power_state
from tests.billing import cardholder
from tests.catalog.lab import GPU_MODEL, LAPTOP_KEY, bare_metal_lab, customer
from tests.portal.factories import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WATCH_STEPS = """
() => {
  window.__samePage = true;
  window.__seen = [];
  const list = document.getElementById('order-steps');
  new MutationObserver(() => {
    for (const li of list.querySelectorAll('li')) {
      window.__seen.push(li.dataset.step + ':' + li.dataset.state);
    }
  }).observe(list, {childList: true, subtree: true});
}
"""


def test_given_a_customer_with_a_card_when_ordering_two_servers_then_they_come_up_live_and_end(
    live_stack, page, switches, bmc_emulator
):
    bare_metal_lab(switches=switches, emulator=bmc_emulator)
    user = customer(credit=None)
    cardholder.save_card(user.memberships.get())

    page.goto(live_stack.url + "/accounts/login/")
    page.fill("#id_login", user.email)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.click("#order-bare-metal")
    page.select_option("#id_gpu_model", GPU_MODEL)
    page.fill("#id_nodes", "2")
    page.click("#get-quote")  # no key yet: the form asks for one
    expect(page.locator("#new-key-error")).to_contain_text("Add an SSH key")
    page.fill("#id_new_key", LAPTOP_KEY)
    page.fill("#id_new_key_name", "laptop")
    page.click("#get-quote")
    expect(page.locator("#quote")).to_contain_text("per hour")
    expect(page.locator("#order-ssh-keys")).to_contain_text("laptop (SHA256:")
    page.click("#place-order")

    expect(page).to_have_url(re.compile(r"/orders/\d+/$"))
    order = Order.objects.get(organization__memberships__user=user)
    assert order.spec["ssh_keys"] == [user.ssh_keys.get(name="laptop").fingerprint]
    page.evaluate(WATCH_STEPS)
    expect(page.locator("#order-state")).to_have_attribute("data-state", "active", timeout=60_000)
    expect(page.locator("#order-nodes")).to_contain_text("ssh ubuntu@10.210.")
    expect(page.locator("#order-steps [data-state=done]")).to_have_count(6)
    seen = page.evaluate("window.__seen")
    assert page.evaluate("window.__samePage") is True
    assert "power:running" in seen and "power:done" in seen  # progress arrived step by step
    order.refresh_from_db()
    assert {node_power_state(node=n.node) for n in order.nodes.all()} == {"on"}
    assert "authorized" in order.events.get(to_state="authorized").detail

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#terminate")
    expect(page.locator("#order-state")).to_have_attribute(
        "data-state", "terminated", timeout=30_000
    )
    order.refresh_from_db()
    assert order.ended_at and order.cleaned_up_at
    assert order.allocation.state == "released"
