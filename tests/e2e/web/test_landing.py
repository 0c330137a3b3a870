"""The landing page, signed out: what Visiona is, and its prices from the gateway."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from playwright.sync_api import BrowserContext, Page, expect

from tests.support.stack import RunningStack
from tests.support.web import Screens, WebApp, assert_no_raw_problem

MONEY = """([amount, currency]) => new Intl.NumberFormat(
  "en", {style: "currency", currency: currency.toUpperCase()}
).format(amount / 100)"""


def money(page: Page, amount: int, currency: str) -> str:
    """An amount as the page writes it (lib/format.ts formatMoney)."""
    return str(page.evaluate(MONEY, [amount, currency]))


def test_the_landing_page_shows_the_gateways_prices_signed_out(
    stack: RunningStack, web: WebApp, new_context: Callable[..., BrowserContext], shots: Screens
) -> None:
    page = new_context().new_page()
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Photos of you")
    expect(page.get_by_role("link", name="Sign in")).to_be_visible()
    pricing = page.locator("#pricing")
    shots.take(page, "landing")
    answer = httpx.get(f"{stack.url}/v1/billing/plans")
    assert answer.status_code == 200, answer.text
    catalogue = answer.json()
    expect(pricing).to_contain_text(f"A training costs {catalogue['prices']['training']} credits")
    for pack in catalogue["packs"]:
        card = pricing.locator("[data-slot=card]", has_text=pack["name"]).first
        expect(card).to_contain_text(money(page, pack["unit_amount"], pack["currency"]))
        expect(card).to_contain_text(f"{pack['credits']:,} credits")
    for plan in catalogue["plans"]:
        card = pricing.locator("[data-slot=card]", has_text=plan["name"]).first
        expect(card).to_contain_text(money(page, plan["unit_amount"], plan["currency"]))
        expect(card).to_contain_text(f"{plan['monthly_credits']:,} credits every month")
    assert_no_raw_problem(page)
