"""A customer with a card and no SSH key adds one on the order form, orders two H100 servers
in the browser, watches each step's progress arrive over the websocket, copies the ssh line and
the known_hosts lines from the page and logs in from the customer laptop (outside the fabric,
through the network's bastion) to the server that booted for them, then terminates the order.
Real worker, real switches over SSH, the Redfish emulator, lab servers booting from the portal,
localstripe. Needs root (CI runs as root)."""

import re
import subprocess

import pytest
from playwright.sync_api import expect

from catalog.models import Order
from fabric.services.power import node_power_state
from tests.billing import cardholder
from tests.catalog.lab import bare_metal_lab, customer, running_lab
from tests.fabric.lab_chain import keypair, require_root_and_tools, ssh_config, wait
from tests.portal.factories import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
H100 = "NVIDIA H100 80GB HBM3"

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


def test_given_a_customer_with_a_card_when_ordering_two_h100s_then_they_boot_and_answer_ssh(
    live_stack, page, switches, bmc_emulator, tmp_path
):
    require_root_and_tools()
    _, nodes, _ = bare_metal_lab(switches=switches, emulator=bmc_emulator, gpu_model=H100)
    user = customer(credit=None)
    cardholder.save_card(user.memberships.get())
    private_key, public_key = keypair(tmp_path, "laptop")

    with running_lab(live_stack, nodes, root=tmp_path / "lab") as lab:
        page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_stack.url)
        page.goto(live_stack.url + "/accounts/login/")
        page.fill("#id_login", user.email)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.click("#order-bare-metal")
        page.select_option("#id_gpu_model", H100)
        page.fill("#id_nodes", "2")
        page.click("#get-quote")  # no key yet: the form asks for one
        expect(page.locator("#new-key-error")).to_contain_text("Add an SSH key")
        page.fill("#id_new_key", public_key)
        page.fill("#id_new_key_name", "laptop")
        page.click("#get-quote")
        expect(page.locator("#quote")).to_contain_text("per hour")
        expect(page.locator("#order-ssh-keys")).to_contain_text("laptop (SHA256:")
        page.click("#place-order")

        expect(page).to_have_url(re.compile(r"/orders/\d+/$"))
        order = Order.objects.get(organization__memberships__user=user)
        assert order.spec["ssh_keys"] == [user.ssh_keys.get(name="laptop").fingerprint]
        page.evaluate(WATCH_STEPS)
        expect(page.locator("#order-state")).to_have_attribute(
            "data-state", "active", timeout=180_000
        )
        expect(page.locator("#order-steps [data-state=done]")).to_have_count(6)
        seen = page.evaluate("window.__seen")
        assert page.evaluate("window.__samePage") is True
        assert "power:running" in seen and "power:done" in seen  # progress arrived step by step
        order.refresh_from_db()
        assert {node_power_state(node=n.node) for n in order.nodes.all()} == {"on"}
        assert all(n.phoned_home_at and n.host_keys for n in order.nodes.all())
        assert "authorized" in order.events.get(to_state="authorized").detail

        # Copy the first server's ssh line and the known_hosts lines, paste them on the laptop.
        page.locator("#order-nodes .copy-ssh").first.click()
        expect(page.locator("#order-nodes .copy-ssh").first).to_have_text("Copied")
        line = page.evaluate("navigator.clipboard.readText()")
        first = page.locator("#order-nodes tbody tr").first.locator("td").first.inner_text()
        assert re.fullmatch(r"ssh -J jump@[0-9.]+ ubuntu@10\.210\.[0-9.]+", line), line
        known_hosts = tmp_path / "known_hosts"
        known_hosts.write_text(page.locator("#order-known-hosts").inner_text())
        jump = line.split()[2].split("@")[1]  # the bastion's line comes first: both hops checked
        assert known_hosts.read_text().startswith(f"{jump} ssh-ed25519 ")
        config = ssh_config(tmp_path / "ssh_config", private_key, known_hosts)
        done = lab.access.laptop(["ssh", "-F", str(config), *line.split()[1:], "hostname"])
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == first

        page.once("dialog", lambda dialog: dialog.accept())
        page.click("#terminate")
        expect(page.locator("#order-state")).to_have_attribute(
            "data-state", "terminated", timeout=60_000
        )
        expect(page.locator("#order-nodes tbody")).to_contain_text("ended")
        expect(page.locator("#order-nodes tbody")).not_to_contain_text("ready")
        order.refresh_from_db()
        assert order.ended_at and order.cleaned_up_at
        assert order.allocation.state == "released"
        # The network is gone: so are its bastion and the servers' place on its segment.
        wait(lambda: lab.access.bastions == [], 30, "the bastion to go")
        done = lab.access.laptop(["ssh", "-F", str(config), *line.split()[1:], "hostname"])
        assert done.returncode == 255
    assert not subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.count(
        lab.lab.prefix
    )
