"""A new customer, in Chromium: sign up, verify the email from the link, add a card through the
Stripe.js mock (localstripe), land on the dashboard ready to order. Declines and 3-D Secure."""

import re

import pytest
from playwright.sync_api import expect

from billing.models import Card
from portal.models import AuditEvent
from tests.e2e.mail import mail_to
from tests.portal.factories import PASSWORD, member

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _type_card(page, number: str) -> None:
    card = page.locator("#card-element")
    card.locator('input[placeholder="number"]').fill(number)
    card.locator('input[placeholder="exp_month"]').fill("12")
    card.locator('input[placeholder="exp_year"]').fill("31")
    card.locator('input[placeholder="cvc"]').fill("123")
    card.locator('input[placeholder="postal_code"]').fill("75001")
    page.click("#save-card")


def _sign_in(page, url: str, email: str) -> None:
    page.goto(url + "/accounts/login/")
    page.fill("#id_login", email)
    page.fill("#id_password", PASSWORD)
    page.click("main form button[type=submit]")
    expect(page).to_have_url(url + "/dashboard/")


def test_a_new_customer_signs_up_verifies_adds_a_card_and_is_ready_to_order(live_stack, page):
    url, email = live_stack.url, "ada@example.com"
    page.goto(url + "/")
    page.click("text=Sign up")
    page.fill("#id_email", email)
    page.fill("#id_password1", "Analytical-Engine-1843")
    page.fill("#id_password2", "Analytical-Engine-1843")
    page.click("main form button[type=submit]")
    expect(page.locator("#purchase-blockers")).to_contain_text("Verify your email address")

    link = re.search(
        r"(http://\S+/accounts/confirm-email/\S+/)", mail_to(live_stack.mail_dir, email)
    )[1]
    page.goto(link)
    page.click("main form button[type=submit]")
    expect(page.locator("#purchase-blockers")).not_to_contain_text("Verify your email")

    page.click("text=Billing")
    page.click("#add-card")
    _type_card(page, "4242424242424242")
    expect(page).to_have_url(url + "/dashboard/")
    expect(page.locator("#payment-summary")).to_contain_text("Visa •••• 4242, expires 12/2031")
    expect(page.locator("#ready-to-order")).to_be_visible()
    assert Card.objects.get().is_default


def test_a_declined_card_says_so_and_saves_nothing(live_stack, page):
    user = member(verified=True)
    _sign_in(page, live_stack.url, user.email)
    page.goto(live_stack.url + "/billing/card/")
    _type_card(page, "4000000000000002")
    expect(page.locator("#card-error")).to_have_text(
        "Your card was declined. Your card was not saved."
    )
    page.goto(live_stack.url + "/billing/")
    expect(page.locator("#no-card")).to_be_visible()
    assert not Card.objects.exists()
    assert AuditEvent.objects.filter(action=AuditEvent.Action.CARD_DECLINED).exists()


@pytest.mark.parametrize("outcome", ["Complete authentication", "Fail authentication"])
def test_a_3d_secure_card_is_saved_only_when_authentication_completes(live_stack, page, outcome):
    user = member(verified=True)
    _sign_in(page, live_stack.url, user.email)
    page.goto(live_stack.url + "/billing/card/")
    _type_card(page, "4000002500003155")
    page.get_by_role("button", name=outcome).click()
    if outcome == "Complete authentication":
        expect(page).to_have_url(live_stack.url + "/dashboard/")
        expect(page.locator("#payment-summary")).to_contain_text("•••• 3155")
        assert Card.objects.get().last4 == "3155"
    else:
        expect(page.locator("#card-error")).to_contain_text("authentication failed")
        expect(page.locator("#card-error")).to_contain_text("Your card was not saved.")
        assert not Card.objects.exists()
