"""Dev sign-in in a browser: the page, a name it refuses, the dashboard of a new account,
signing out."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import BrowserContext, expect

from tests.support.web import Screens, WebApp, balance_chip, new_user

SESSION = "__session"


def session_cookie(context: BrowserContext) -> str | None:
    return next((c["value"] for c in context.cookies() if c["name"] == SESSION), None)


def test_dev_sign_in_refuses_a_bad_name_signs_in_to_an_empty_dashboard_and_out(
    web: WebApp, new_context: Callable[..., BrowserContext], shots: Screens
) -> None:
    user = new_user("signin")
    context = new_context()
    page = context.new_page()
    page.goto("/sign-in")
    name = page.get_by_label("Your name")
    expect(name).to_be_focused()
    expect(page.get_by_text("Local development: pick any name.")).to_be_visible()
    shots.take(page, "sign-in")

    name.fill("not a name!")
    page.get_by_role("button", name="Continue").click()
    expect(page.locator("#dev-user-error")).to_contain_text("letters, digits")
    expect(name).to_have_attribute("aria-invalid", "true")
    expect(page).to_have_url(re.compile(r"/sign-in$"))
    assert session_cookie(context) is None
    shots.take(page, "sign-in-refused")
    # The server refuses it too, whatever a page sends.
    refused = page.request.post("/api/dev/session", data={"user": "not a name!"})
    assert (refused.status, refused.json()["code"]) == (422, "invalid_user_name")
    assert session_cookie(context) is None

    name.fill(user)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/dashboard")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.locator("aside").get_by_text(user, exact=True)).to_be_visible()
    expect(balance_chip(page, 0)).to_be_visible()
    expect(page.get_by_text("available · 0 held for running work · 0 in total")).to_be_visible()
    expect(page.get_by_text("No models yet")).to_be_visible()
    assert session_cookie(context)
    shots.take(page, "dashboard")

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{web.url}/")
    expect(page.get_by_role("link", name="Sign in")).to_be_visible()
    assert session_cookie(context) is None
    shots.take(page, "landing-signed-out")
    # Signed out, the app's pages send the browser to sign in, and back afterwards: the
    # operators' page too (what it shows is decided once signed in).
    page.goto("/admin")
    expect(page).to_have_url(f"{web.url}/sign-in?redirect_url=%2Fadmin")
    page.goto("/dashboard")
    expect(page).to_have_url(f"{web.url}/sign-in?redirect_url=%2Fdashboard")
    expect(page.get_by_label("Your name")).to_be_visible()
    shots.take(page, "sign-in-again")
