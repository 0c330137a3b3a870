"""Problems the API answers reach the page as words and a way forward, never as JSON: a real
429 (the user's rate limit) and a real 503 (a back service down)."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from tests.e2e.test_billing import STARTER, buy_starter, wait_balance
from tests.support.stack import RunningStack, extra_gateway
from tests.support.web import Screens, assert_no_raw_problem, balance_chip, new_user

# The page retries a failing read three times (1, 2 and 4 s apart: components/app/providers)
# before it shows the problem; with the gateway's own answer time, well within this.
SHOWN_S = 30
# One request per 100 s, none ahead: the whole user's budget on a gateway started so.
TIGHT = {"GATEWAY_USER_RATE_PER_S": "0.01", "GATEWAY_USER_BURST": "1"}


def notice(page: Page, title: str) -> Locator:
    """A problem shown in place of what could not load (not a toast: those are outside
    <main>)."""
    return page.locator("main [role=alert]").filter(has_text=title)


def test_a_429_shows_its_message_and_a_retry(
    stack: RunningStack, signed_in_page: Callable[[str], Page], shots: Screens
) -> None:
    user = new_user("hasty")
    # The buckets are in the database, shared by every gateway: one request at a gateway
    # that allows one per 100 s spends the user's budget at the stack's gateway too.
    with extra_gateway(stack, **TIGHT) as tight:
        answers = [
            httpx.get(f"{tight}/v1/billing/balance", headers=stack.auth(user)) for _ in range(2)
        ]
    assert [a.status_code for a in answers] == [200, 429], answers[-1].text
    limited = httpx.get(f"{stack.url}/v1/billing/balance", headers=stack.auth(user))
    assert limited.status_code == 429, limited.text
    assert int(limited.headers["retry-after"]) > SHOWN_S

    page = signed_in_page(user)
    shown = notice(page, "Slow down a little").first
    expect(shown).to_be_visible(timeout=SHOWN_S * 1000)
    expect(shown).to_contain_text("You are sending requests faster than we can take them.")
    # The Retry-After the gateway sent (exposed to the page by CORS), in words.
    expect(shown).to_contain_text(re.compile(r"Try again in \d+ s\."))
    expect(shown.get_by_role("button", name="Try again")).to_be_visible()
    expect(shown).to_contain_text("rate_limited")
    assert_no_raw_problem(page)
    shots.take(page, "dashboard-rate-limited")


@pytest.mark.disruptive
def test_a_503_shows_its_message_and_a_retry_that_works_once_the_service_is_back(
    stack: RunningStack, signed_in_page: Callable[[str], Page], shots: Screens
) -> None:
    user = new_user("outage")
    buy_starter(stack, user)
    wait_balance(stack, user, STARTER.credits)
    stack.processes.stop("billing")
    try:
        page = signed_in_page(user)
        shown = notice(page, "Visiona is catching its breath")
        expect(shown).to_be_visible(timeout=SHOWN_S * 1000)
        expect(shown).to_contain_text("Part of Visiona is restarting. Nothing you did was lost.")
        expect(shown).to_contain_text("service_unavailable")
        assert_no_raw_problem(page)
        shots.take(page, "dashboard-billing-down")
    finally:
        stack.processes.start("billing")
        stack.processes.wait_ready()
    shown.get_by_role("button", name="Try again").click()
    expect(balance_chip(page, STARTER.credits)).to_be_visible()
    expect(shown).to_have_count(0)
    shots.take(page, "dashboard-billing-back")
