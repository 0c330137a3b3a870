"""The live stream in the browser survives a drop and an expired session: the page keeps
updating, with no reload.

The page's event stream goes to the gateway through a proxy the test cuts
(tests/support/cut_proxy.py; the browser's own request, redirected by Playwright's routing),
so the drop is a real one on the wire while the stack runs on untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from http.cookies import SimpleCookie
from typing import Any

import jwt
from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.test_billing import STARTER, buy_starter, wait_balance
from tests.support.cut_proxy import CutProxy, Exchange, cut_proxy
from tests.support.stack import RunningStack
from tests.support.web import (
    Screens,
    WebApp,
    balance_chip,
    live_indicator,
    new_user,
    sign_in,
    stream_through,
    wait_in_browser,
)

STATE = "data-stream-state"
# The gateway asks EventSource to reconnect after 3 s (GATEWAY_SSE_RETRY_MS): the bound on
# waiting for a reconnection is well above it.
RECONNECT_S = 20


def streaming_page(
    new_context: Callable[..., BrowserContext], stack: RunningStack, proxy: CutProxy, user: str
) -> Page:
    """``user`` signed in on the dashboard, its live stream open through ``proxy``."""
    context = new_context()
    stream_through(context, stack, proxy.port)
    page = sign_in(context, user)
    expect(live_indicator(page)).to_have_attribute(STATE, "open", timeout=RECONNECT_S * 1000)
    # Set once: a reload would lose it.
    page.evaluate("window.__visiona_same_page = true")
    return page


def same_page(page: Page) -> bool:
    return page.evaluate("window.__visiona_same_page === true") is True


def claims(exchange: Exchange) -> dict[str, Any]:
    """The session token's claims in the cookie the browser sent (not verified: read)."""
    cookie = SimpleCookie(exchange.header("cookie") or "")
    assert "__session" in cookie, exchange.request[:500]
    return dict(jwt.decode(cookie["__session"].value, options={"verify_signature": False}))


def test_a_dropped_event_stream_reconnects_and_what_happened_meanwhile_arrives_live(
    stack: RunningStack, web: WebApp, new_context: Callable[..., BrowserContext], shots: Screens
) -> None:
    user = new_user("drop")
    gateway_port = stack.cfg.ports["gateway"]
    with cut_proxy("127.0.0.1", gateway_port) as proxy:
        page = streaming_page(new_context, stack, proxy, user)
        expect(balance_chip(page, 0)).to_be_visible()
        shots.take(page, "dashboard-live")

        proxy.hold()
        assert proxy.cut() == 1
        expect(live_indicator(page)).to_have_attribute(STATE, "reconnecting")
        expect(live_indicator(page)).to_contain_text("Reconnecting…")
        shots.take(page, "dashboard-reconnecting")
        # Credits arrive while the page is cut off; the browser keeps trying meanwhile.
        buy_starter(stack, user)
        wait_balance(stack, user, STARTER.credits)
        wait_in_browser(
            page, "the browser to try the stream again", lambda: proxy.refused, lambda n: n >= 1
        )
        expect(balance_chip(page, 0)).to_be_visible()

        proxy.release()
        # Back: the stream resumes after the last event the page saw, and the credits show.
        expect(live_indicator(page)).to_have_attribute(STATE, "open", timeout=RECONNECT_S * 1000)
        expect(balance_chip(page, STARTER.credits)).to_be_visible()
        assert same_page(page)
        resumed = proxy.exchanges[-1]
        assert resumed.status == 200 and resumed.header("last-event-id"), resumed.request[:500]
        shots.take(page, "dashboard-reconnected")


def test_after_its_session_expired_the_stream_reconnects_with_a_renewed_one(
    stack: RunningStack, web: WebApp, new_context: Callable[..., BrowserContext], shots: Screens
) -> None:
    user = new_user("expiry")
    gateway_port = stack.cfg.ports["gateway"]
    with cut_proxy("127.0.0.1", gateway_port) as proxy:
        page = streaming_page(new_context, stack, proxy, user)
        context = page.context
        (first,) = proxy.exchanges
        signed_in = claims(first)
        assert signed_in["sub"] == f"user_{user}"
        # An event the page sees: where a new stream resumes.
        buy_starter(stack, user)
        expect(balance_chip(page, STARTER.credits)).to_be_visible()

        # The page renews its session by itself ahead of the expiry (lib/auth/session.tsx).
        def cookie() -> str:
            return next(c["value"] for c in context.cookies() if c["name"] == "__session")

        at_sign_in = cookie()
        lifetime = signed_in["exp"] - signed_in["iat"]
        wait_in_browser(
            page,
            "the page to renew its session",
            cookie,
            lambda value: value != at_sign_in,
            timeout_s=lifetime + 10,
        )

        # Now a tab that slept through its renewals: the cookie it holds has expired. The
        # stream drops; the browser reconnects with that cookie, the gateway refuses it (401)
        # and the browser gives up; the page renews the session and opens a new stream. The
        # page's own renewal timer may come first on a slow machine (it reads the cookie, sees
        # it expired and renews): then no stream ever carries the expired cookie. Either way
        # an expired cookie is refused and the stream comes back renewed; the refusal path
        # alone, deterministically: web/tests/unit/live-session.test.tsx.
        expired = stack.token(user, azp=web.url, ttl_s=-60)
        context.add_cookies([{"name": "__session", "value": expired, "url": web.url}])
        before = len(proxy.exchanges)
        assert before == 1, [(e.status, e.path) for e in proxy.exchanges]
        assert proxy.cut() == 1
        expect(live_indicator(page)).to_have_attribute(STATE, "reconnecting")
        expect(live_indicator(page)).to_have_attribute(STATE, "open", timeout=RECONNECT_S * 1000)

        after = [(e.status, claims(e)["exp"], e.path) for e in proxy.exchanges[before:]]
        expired_at = jwt.decode(expired, options={"verify_signature": False})["exp"]
        assert after, after
        assert all(status == 401 for status, exp, _ in after if exp == expired_at), after
        assert [status for status, exp, _ in after if exp != expired_at][:1] == [200], after
        status, renewed_until, path = after[-1]
        assert status == 200 and renewed_until > signed_in["exp"], after
        # A stream resuming after the last event the page had seen: the page's new one names
        # it in the query, the browser's own reconnection in Last-Event-ID.
        last = proxy.exchanges[-1]
        assert "last_event_id=" in path or last.header("Last-Event-ID"), after
        assert claims(proxy.exchanges[-1])["sub"] == f"user_{user}"

        buy_starter(stack, user)
        expect(balance_chip(page, 2 * STARTER.credits)).to_be_visible()
        assert same_page(page)
        shots.take(page, "dashboard-after-renewal")
