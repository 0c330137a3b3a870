"""Browser tests of the web app: one chromium for the package, a context per user, every
page photographed (tests/support/web.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Generator, Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Error, Page, expect

from tests.support.browser import chromium
from tests.support.web import DESKTOP, Screens, WebApp, sign_in

# What each test's pages said in their consoles (errors, warnings), for its failure report.
CONSOLE = pytest.StashKey[list[str]]()
# Bounds on waiting for the page, for a machine as loaded as `make test` makes it (two
# sessions, each a whole stack): Playwright's defaults (5 s for an expectation) are for a
# quiet one. A wait that passes returns as soon as it holds.
EXPECT_TIMEOUT_MS = 20_000
ACTION_TIMEOUT_MS = 30_000
expect.set_options(timeout=EXPECT_TIMEOUT_MS)


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One chromium for the package's tests (the sync Playwright driver is closed before any
    other package's tests run: its event loop must not outlive them)."""
    with chromium() as launched:
        yield launched


@pytest.fixture
def new_context(
    browser: Browser, web: WebApp, request: pytest.FixtureRequest
) -> Iterator[Callable[..., BrowserContext]]:
    """Contexts (a browser profile each: cookies, storage) on the web app, closed after the
    test; what their pages log as errors or warnings goes to the test's failure report."""
    said = request.node.stash.setdefault(CONSOLE, [])
    contexts: list[BrowserContext] = []

    def watch(page: Page) -> None:
        def console(message: ConsoleMessage) -> None:
            if message.type in ("error", "warning"):
                said.append(f"{page.url} {message.type}: {message.text}")

        page.on("console", console)
        page.on("pageerror", lambda error: said.append(f"{page.url} uncaught: {error}"))

    def make(**options: Any) -> BrowserContext:
        context = browser.new_context(base_url=web.url, **({"viewport": DESKTOP} | options))
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        context.on("page", watch)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        with contextlib.suppress(Error):
            context.close()


@pytest.fixture
def signed_in_page(new_context: Callable[..., BrowserContext]) -> Callable[[str], Page]:
    """``signed_in_page(user)``: a new context, signed in through the dev sign-in page, on
    the dashboard."""
    return lambda user: sign_in(new_context(), user)


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Screens:
    """Where the test's screenshots go: test-results/web/<test>/<name>-<width>.png."""
    return Screens.for_test(request.node.name)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    said = item.stash.get(CONSOLE, [])
    if report.failed and said and report.when == "call":
        report.sections.append(("browser console", "\n".join(said[-50:])))
    return report
