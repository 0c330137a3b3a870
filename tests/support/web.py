"""The web app under test, and what browser tests do with it.

The production build of web/ (``make web``; ``make test`` makes it first) served by
``next start`` in dev sign-in mode beside the session's stack, at
``http://localhost:<stack.web_port>``: the first of the stack's web origins, so the gateway's
CORS, Clerk's authorized parties and Stripe's return URL all point at it. A missing or stale
build fails the test naming ``make web``; nothing builds here (a build takes a minute).

One server per pytest session (the ``web`` fixture); a test that needs a server of other
settings (the startup refusals) starts its own with :func:`running_web` or :func:`next_start`.
Its log is kept in the stack's log folder and its end is added to every failing test that
used it.

For the browser: :func:`sign_in` (the real dev sign-in page), :class:`Screens` (full-page
screenshots at phone and desktop width under ``test-results/web/<test>/``) and
:func:`assert_accessible` (axe-core from web/node_modules: no serious or critical violation).
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.sync_api import BrowserContext, Locator, Page, ViewportSize

from tests.support.stack import RunningStack
from tests.support.waiting import serving
from visiona.emulators.stack import stop_process

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]
WEB_DIR = REPO / "web"
BUILD_ID = WEB_DIR / ".next" / "BUILD_ID"
NODE = REPO / ".venv" / "bin" / "node"
NEXT = WEB_DIR / "node_modules" / "next" / "dist" / "bin" / "next"
AXE = WEB_DIR / "node_modules" / "axe-core" / "axe.min.js"
INSTALLED = REPO / ".venv" / ".installed"
# What `make web` rebuilds for (the Makefile's WEB_SOURCES): every file of web/ but these.
NOT_SOURCES = ("node_modules", ".next", "test-results")
# What the tools write beside the sources (git ignores them): `npm run typecheck`'s
# incremental state and Next's type references. Making them is not changing the app.
GENERATED = ("*.tsbuildinfo", "next-env.d.ts")
SCREENSHOTS = REPO / "test-results" / "web"
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
VIEWPORTS = (PHONE, DESKTOP)
# A session token lives this long in the tests' web app (lib/auth/dev-issuer.ts): short, so
# that the pages renew their sessions while the suite runs, as they must for hours in use.
TOKEN_TTL_S = 20
# The server's settings that do not come from the stack: none of the caller's own (a
# developer's shell may have a Clerk key or another auth mode set).
FOREIGN_PREFIXES = ("VISIONA_", "CLERK_", "NEXT_PUBLIC_")


def build_problem() -> str | None:
    """Why the production build cannot be served as it is (missing, or older than a source
    file or the last `make install`), or None."""
    if not BUILD_ID.exists():
        return f"no production build of web/ ({BUILD_ID.relative_to(REPO)} is missing)"
    built = BUILD_ID.stat().st_mtime
    newer = [path for path in web_sources() if path.stat().st_mtime > built]
    if INSTALLED.exists() and INSTALLED.stat().st_mtime > built:
        newer.append(INSTALLED)
    if newer:
        names = ", ".join(str(p.relative_to(REPO)) for p in newer[:5])
        more = f" and {len(newer) - 5} more" if len(newer) > 5 else ""
        return f"the production build of web/ is older than {names}{more}"
    return None


def web_sources() -> Iterator[Path]:
    for folder, dirs, files in os.walk(WEB_DIR):
        if folder == str(WEB_DIR):
            dirs[:] = [d for d in dirs if d not in NOT_SOURCES]
        for name in files:
            if is_source(name):
                yield Path(folder) / name


def is_source(name: str) -> bool:
    return not any(fnmatch.fnmatch(name, pattern) for pattern in GENERATED)


def require_build() -> None:
    problem = build_problem()
    if problem:
        pytest.fail(
            f"{problem}: run `make web` (`make test` runs it first); the browser tests serve "
            "the production build and never build it themselves",
            pytrace=False,
        )
    if not NODE.exists():
        pytest.fail(f"no Node.js at {NODE}: run `make install`", pytrace=False)


def web_env(stack: RunningStack, port: int, **settings: str) -> dict[str, str]:
    """`next start`'s environment for a web app at http://localhost:<port> over ``stack``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_PREFIXES)}
    env.pop("NODE_ENV", None)
    return (
        env
        | {
            "PATH": f"{NODE.parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "VISIONA_AUTH_MODE": "dev",
            # What the browser calls: localhost, as the page's own host, so that the page's
            # __session cookie (set for localhost, whatever the port) goes with EventSource.
            # The gateway listens on 127.0.0.1 only: for localhost chromium tries ::1 first,
            # is refused at once, and connects to 127.0.0.1.
            "VISIONA_API_URL": f"http://localhost:{stack.cfg.ports['gateway']}",
            "VISIONA_GATEWAY_INTERNAL_URL": stack.url,
            "VISIONA_WEB_URL": f"http://localhost:{port}",
            "VISIONA_DEV_ISSUER_URL": stack.cfg.clerk_issuer,
            "VISIONA_DEV_TOKEN_TTL_S": str(TOKEN_TTL_S),
            "NEXT_TELEMETRY_DISABLED": "1",
        }
        | settings
    )


def next_start(port: int, env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`next start` of the production build on 127.0.0.1:<port>, its output in ``log``."""
    require_build()
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(NODE), str(NEXT), "start", "--port", str(port), "--hostname", "127.0.0.1"],
            cwd=WEB_DIR,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@dataclass
class WebApp:
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


@contextlib.contextmanager
def running_web(stack: RunningStack, port: int, **settings: str) -> Iterator[WebApp]:
    """The web app over ``stack`` at http://localhost:<port>, until the block ends."""
    log = Path(stack.cfg.state_dir) / "logs" / f"web-{port}.log"
    proc = next_start(port, web_env(stack, port, **settings), log)
    app = WebApp(port, proc, log)
    try:
        # A page the proxy serves without a session (the Host is loopback, as it must be).
        serving(proc, f"{app.url}/sign-in", log=log)
        yield app
    finally:
        stop_process(proc, 15)


# --- the browser ------------------------------------------------------------------------------


def new_user(name: str) -> str:
    """A name no test used before: a fresh account."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


def sign_in(context: BrowserContext, user: str) -> Page:
    """Sign ``user`` in through the dev sign-in page, as a person does; the page is left on
    the dashboard. ``context`` has the web app as its base URL."""
    page = context.new_page()
    page.goto("/sign-in")
    page.fill("#dev-user", user)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/dashboard")
    return page


def wait_in_browser(
    page: Page, what: str, probe: Callable[[], T], done: Callable[[T], bool], timeout_s: float = 20
) -> T:
    """:func:`tests.support.waiting.wait_for`, letting the browser work meanwhile: the sync
    Playwright runs a context's route handlers (:func:`stream_through`) only inside its own
    calls, so a plain sleep would hold the page's requests."""
    deadline = time.monotonic() + timeout_s
    value = probe()
    while not done(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last: {value!r}")
        page.wait_for_timeout(50)
        value = probe()
    return value


def live_indicator(page: Page) -> Locator:
    """The live indicator (components/app/app-shell.tsx); ``data-stream-state`` says
    connecting, open or reconnecting."""
    return page.locator("[data-stream-state]").first


def balance_chip(page: Page, credits: int) -> Locator:
    """The header's balance chip showing ``credits`` available."""
    return page.get_by_role("link", name=re.compile(rf"^{credits} credits available\b"))


def gateway_for_browser(stack: RunningStack) -> str:
    """The gateway as the web app's pages call it (VISIONA_API_URL)."""
    return f"http://localhost:{stack.cfg.ports['gateway']}"


def stream_through(context: BrowserContext, stack: RunningStack, port: int) -> None:
    """The pages' event stream, and only it, goes to the gateway through localhost:<port>
    (a :class:`tests.support.cut_proxy.CutProxy` there): the browser's own request, sent
    elsewhere, streaming as ever. The handler runs only while the test is in a Playwright
    call: wait with :func:`wait_in_browser` or ``expect``, not a sleep."""
    gateway = gateway_for_browser(stack)
    via = f"http://localhost:{port}"
    context.route(
        lambda url: url.startswith(f"{gateway}/v1/events"),
        lambda route: route.continue_(url=route.request.url.replace(gateway, via, 1)),
    )


def settle(page: Page) -> None:
    """Fonts loaded and the layout of a new size drawn."""
    page.evaluate(
        "document.fonts.ready.then(() => new Promise(r => requestAnimationFrame(() => r(null))))"
    )


@dataclass
class Screens:
    """Full-page screenshots of every page a test visits, at phone and desktop width, as
    ``<folder>/<name>-<width>.png``; the viewport is put back as it was."""

    folder: Path

    def take(self, page: Page, name: str) -> list[Path]:
        self.folder.mkdir(parents=True, exist_ok=True)
        was = page.viewport_size
        taken = []
        try:
            for viewport in VIEWPORTS:
                page.set_viewport_size(viewport)
                settle(page)
                # The whole page as one tall screen, not a full-page capture of a short one:
                # what is fixed to the bottom of the screen (the phone's tab bar) is drawn at
                # the bottom, not across the middle.
                height = page.evaluate("document.documentElement.scrollHeight")
                page.set_viewport_size(
                    {"width": viewport["width"], "height": max(viewport["height"], height)}
                )
                settle(page)
                path = self.folder / f"{name}-{viewport['width']}.png"
                page.screenshot(path=str(path), full_page=True, animations="disabled")
                taken.append(path)
        finally:
            if was is not None:
                page.set_viewport_size(was)
        return taken

    @classmethod
    def for_test(cls, test_name: str) -> Screens:
        folder = SCREENSHOTS / re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name)
        shutil.rmtree(folder, ignore_errors=True)
        return cls(folder)


SERIOUS = ("serious", "critical")


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now (WCAG 2.x A/AA
    and best practices)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
    )
    return [v for v in found if v.get("impact") in SERIOUS]


def describe_violations(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']} [{len(v['nodes'])} element(s)]")
        for node in v["nodes"][:5]:
            target = " ".join(str(t) for t in node.get("target", []))
            summary = " ".join(str(node.get("failureSummary", "")).split())
            lines.append(f"    {target}: {summary}")
        lines.append(f"    {v['helpUrl']}")
    return "\n".join(lines)


def assert_accessible(page: Page, what: str) -> None:
    """No serious or critical axe violation on ``page``, at phone and desktop width."""
    was = page.viewport_size
    problems = []
    try:
        for viewport in VIEWPORTS:
            page.set_viewport_size(viewport)
            found = axe_violations(page)
            if found:
                problems.append(f"at {viewport['width']} px:\n{describe_violations(found)}")
    finally:
        if was is not None:
            page.set_viewport_size(was)
    assert not problems, f"axe: serious or critical violations on {what}\n" + "\n".join(problems)


def visible_text(page: Page) -> str:
    return page.locator("body").inner_text()


def assert_no_raw_problem(page: Page) -> None:
    """Nothing of a problem+json answer or a stack trace is on screen."""
    text = visible_text(page)
    for raw in ('"code"', '"status"', "application/problem+json", "urn:visiona:problem", "Error:"):
        assert raw not in text, f"raw {raw!r} shown in the page:\n{text[:2000]}"


# --- fixtures (loaded by the root conftest) -----------------------------------------------------


@pytest.fixture(scope="session")
def web(stack: RunningStack) -> Iterator[WebApp]:
    """The web app over the session's stack, at the origin the stack allows first."""
    require_build()
    with running_web(stack, stack.web_port) as app:
        yield app


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    app = getattr(item, "funcargs", {}).get("web")
    if report.failed and isinstance(app, WebApp):
        report.sections.append(("web app log (the end)", app.log_tail()))
    return report


def assert_toasts_clear_the_bottom_nav(page: Page) -> None:
    """At phone width the toasts on screen stand above the app's fixed bottom navigation,
    never over it (a toast must not hide the way to another page)."""
    was = page.viewport_size
    try:
        page.set_viewport_size(PHONE)
        nav = page.locator("nav[data-bottom-nav]")
        toasts = page.locator(".Toastify__toast")
        toasts.first.wait_for()
        nav_box = nav.bounding_box()
        assert nav_box is not None, "no bottom navigation at phone width"
        for toast in toasts.all():
            box = toast.bounding_box()
            assert box is not None
            assert box["y"] + box["height"] <= nav_box["y"], (
                f"a toast (bottom at {box['y'] + box['height']:.0f} px) covers the bottom "
                f"navigation (top at {nav_box['y']:.0f} px)"
            )
    finally:
        if was is not None:
            page.set_viewport_size(was)
