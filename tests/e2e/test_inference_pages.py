"""The inference pages in Chromium: an owner creates a key (shown once), chats with SmolLM2 in
the playground through the gateway, and sees the tokens on the usage table and chart; another
organization sees none of it."""

import pytest
from playwright.sync_api import expect

from billing.models import CreditGrant
from catalog.gateway.usage import usage_flush
from tests.portal.factories import PASSWORD, member

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def sign_in(page, url, user):
    page.goto(url + "/accounts/login/")
    page.fill("#id_login", user.email)
    page.fill("#id_password", PASSWORD)
    page.click("main form button[type=submit]")


def test_a_key_made_on_the_page_drives_the_playground_and_its_usage_shows_only_to_its_owner(
    live_stack, model_servers, page, browser
):
    owner = member(verified=True)
    CreditGrant.objects.create(organization=owner.memberships.get().organization, amount=50)
    sign_in(page, live_stack.url, owner)
    page.goto(live_stack.url + "/inference/")
    page.fill("#id_name", "playground")
    page.fill("#id_rpm", "30")
    page.click("#create-key")
    secret = page.locator("#new-key-value").inner_text()
    assert secret.startswith("sk-sf-")
    expect(page.locator("#keys")).to_contain_text("playground")

    page.fill("#pg-prompt", "Say hello.")
    page.click("#pg-send")
    expect(page.locator("#pg-output")).to_have_attribute("data-done", "1", timeout=30_000)
    assert page.locator("#pg-output").inner_text().strip()

    usage_flush()
    page.reload()
    row = page.locator("#usage tbody tr").first
    expect(row).to_contain_text("smollm2-135m-instruct")
    assert secret.split("-")[2] in row.inner_text()  # the key's prefix
    assert page.locator("#snippet-python").inner_text().startswith("from openai import OpenAI")

    stranger = browser.new_context().new_page()
    sign_in(stranger, live_stack.url, member(verified=True))
    stranger.goto(live_stack.url + "/inference/")
    expect(stranger.locator("#usage")).to_contain_text("No usage yet.")
    expect(stranger.locator("#keys")).not_to_contain_text("playground")
