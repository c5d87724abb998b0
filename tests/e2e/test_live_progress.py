"""The wiring, end to end: a click in the operator console queues a Celery task in a real worker
process, the task publishes progress through Redis, and the page's bar advances over a websocket
to 100 %."""

import pytest
from playwright.sync_api import expect

from tests.portal.factories import PASSWORD, member

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WATCH_PROGRESS = """
() => {
  window.__samePage = true;
  window.__seen = [];
  const bar = document.querySelector('[role=progressbar]');
  const record = () => window.__seen.push(Number(bar.getAttribute('aria-valuenow')));
  record();
  new MutationObserver(record).observe(bar, {attributes: true});
}
"""


def test_given_a_signed_in_operator_when_running_the_self_check_then_the_bar_reaches_100_live(
    live_stack, page
):
    user = member()
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    page.goto(live_stack.url + "/accounts/login/")
    page.fill("#id_login", user.email)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(live_stack.url + "/dashboard/")

    page.goto(live_stack.url + "/operator/jobs/")
    page.click("#run-self-check")
    expect(page).to_have_url(
        f"{live_stack.url}/jobs/{user.memberships.get().organization.jobs.get().pk}/"
    )
    page.evaluate(WATCH_PROGRESS)

    expect(page.locator("#job-state")).to_have_text("succeeded", timeout=30_000)
    expect(page.locator("[role=progressbar]")).to_have_attribute("aria-valuenow", "100")
    expect(page.locator("#job-progress-bar")).to_have_text("100 %")

    seen = page.evaluate("window.__seen")
    assert page.evaluate("window.__samePage") is True  # no reload: the websocket moved the bar
    assert seen[-1] == 100
    assert any(0 < value < 100 for value in seen), f"no intermediate progress seen: {seen}"
    assert seen == sorted(seen)
