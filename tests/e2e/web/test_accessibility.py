"""axe-core on the pages a new visitor meets first, and on the operator console: no serious or
critical violation, at phone and desktop width."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.web.test_admin_console import sign_in_as_operator
from tests.support.web import Screens, WebApp, assert_accessible, new_user


def landing(new_context: Callable[..., BrowserContext], _: Callable[[str], Page]) -> Page:
    page = new_context().new_page()
    page.goto("/")
    expect(page.locator("#pricing")).to_be_visible()
    return page


def sign_in_page(new_context: Callable[..., BrowserContext], _: Callable[[str], Page]) -> Page:
    page = new_context().new_page()
    page.goto("/sign-in")
    expect(page.get_by_label("Your name")).to_be_visible()
    return page


def dashboard(_: Callable[..., BrowserContext], signed_in: Callable[[str], Page]) -> Page:
    page = signed_in(new_user("axe"))
    # Everything loaded: what axe checks is the page a person reads, not its skeletons.
    expect(page.get_by_text("No models yet")).to_be_visible()
    expect(page.get_by_text("No images yet")).to_be_visible()
    expect(page.get_by_text("Upload your photos")).to_be_visible()
    return page


def operations(new_context: Callable[..., BrowserContext], _: Callable[[str], Page]) -> Page:
    page = sign_in_as_operator(new_context(), new_user("axeops"))
    page.goto("/admin")
    expect(page.get_by_role("heading", name="Stuck jobs")).to_be_visible()
    expect(page.locator("[aria-busy=true]")).to_have_count(0)
    return page


@pytest.mark.parametrize(
    "visit", [landing, sign_in_page, dashboard, operations], ids=lambda f: f.__name__
)
def test_no_serious_accessibility_violations(
    web: WebApp,
    new_context: Callable[..., BrowserContext],
    signed_in_page: Callable[[str], Page],
    shots: Screens,
    visit: Callable[[Callable[..., BrowserContext], Callable[[str], Page]], Page],
) -> None:
    page = visit(new_context, signed_in_page)
    shots.take(page, visit.__name__)
    assert_accessible(page, f"the {visit.__name__.replace('_', ' ')}")
