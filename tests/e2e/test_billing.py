"""Billing end to end: the gateway, billing, the real `stripe` SDK, the Stripe emulator's
hosted pages and its signed webhooks, PostgreSQL and RabbitMQ."""

from __future__ import annotations

import asyncio
import dataclasses
import html
import json
import random
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import stripe

from tests.support.stack import RunningStack
from tests.support.waiting import wait_for
from tests.support.web import WebApp
from visiona.billing.domain.catalog import Catalog
from visiona.emulators.stack import processes
from visiona.kit.bus import EventBus
from visiona.kit.events import (
    Event,
    GenerationRequestedV1,
    GenerationSucceededV1,
    ModelReadyV1,
    TrainingFailedV1,
    TrainingRequestedV1,
)

CATALOG = Catalog.load()
STARTER = CATALOG.pack("starter")
CREATOR = CATALOG.plan("creator")
assert STARTER is not None and CREATOR is not None


def sdk(stack: RunningStack) -> stripe.StripeClient:
    return stripe.StripeClient(
        stack.cfg.stripe_api_key,
        base_addresses={"api": stack.cfg.stripe_url},
        http_client=stripe.HTTPXClient(allow_sync_methods=True),
    )


def emulator(stack: RunningStack, path: str, body: dict[str, Any] | None = None) -> Any:
    response = httpx.post(f"{stack.cfg.stripe_url}{path}", json=body or {}, timeout=10)
    response.raise_for_status()
    return response.json()


def balance(stack: RunningStack, user: str) -> dict[str, int]:
    response = httpx.get(f"{stack.url}/v1/billing/balance", headers=stack.auth(user))
    assert response.status_code == 200, response.text
    return dict(response.json())


def wait_balance(
    stack: RunningStack, user: str, expected: int, timeout_s: float = 20
) -> dict[str, int]:
    return dict(
        wait_for(
            f"{user}'s balance {expected}",
            lambda: balance(stack, user),
            lambda b: b["balance"] == expected,
            timeout_s,
        )
    )


def checkout(stack: RunningStack, user: str, kind: str, item: str) -> dict[str, Any]:
    response = httpx.post(
        f"{stack.url}/v1/billing/checkout",
        headers=stack.auth(user),
        json={"kind": kind, "item_id": item},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def pay(
    session: dict[str, Any],
    outcome: str = "paid",
    *,
    email: str | None = None,
    timeout_s: float = 10.0,
) -> dict[str, Any]:
    """What the user's browser does on Stripe's hosted page (typing ``email`` when given)."""
    response = httpx.post(
        f"{session['url']}/pay",
        json={"outcome": outcome} | ({"email": email} if email else {}),
        headers={"Accept": "application/json"},
        timeout=timeout_s,
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def ledger(stack: RunningStack, user: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{stack.url}/v1/billing/ledger", headers=stack.auth(user), params={"limit": 100}
    )
    assert response.status_code == 200, response.text
    return list(response.json()["entries"])


def plans(stack: RunningStack, user: str) -> dict[str, Any]:
    response = httpx.get(f"{stack.url}/v1/billing/plans", headers=stack.auth(user))
    assert response.status_code == 200, response.text
    return dict(response.json())


def wait_stripe_delivered(stack: RunningStack) -> None:
    """Until the Stripe emulator has sent every webhook it queued (or given up on it)."""
    wait_for(
        "Stripe to deliver every queued webhook",
        lambda: httpx.get(f"{stack.cfg.stripe_url}/_emulator/deliveries/pending").json(),
        lambda answer: answer["pending"] == 0,
    )


def customer_of(stack: RunningStack, user: str) -> str:
    rows = stack.admin_sql(
        "SELECT stripe_customer_id FROM billing.accounts WHERE user_id = %s", f"user_{user}"
    )
    assert rows and rows[0][0], rows
    return str(rows[0][0])


def buy_starter(stack: RunningStack, user: str) -> dict[str, Any]:
    session = checkout(stack, user, "pack", "starter")
    paid = pay(session)
    assert paid["status"] == "complete" and paid["payment_status"] == "paid"
    return paid


# --- packs ----------------------------------------------------------------------------------


def test_buying_a_pack_credits_it_from_the_signed_webhook(stack: RunningStack) -> None:
    user = "buyer"
    assert balance(stack, user) == {"balance": 0, "held": 0, "available": 0}
    session = checkout(stack, user, "pack", "starter")
    assert session["session_id"].startswith("cs_") and session["url"].startswith("http")
    # Nothing is credited before the payment, whatever the browser does.
    assert httpx.get(session["url"]).status_code == 200
    assert balance(stack, user)["balance"] == 0
    pay(session)
    assert wait_balance(stack, user, STARTER.credits) == {
        "balance": STARTER.credits,
        "held": 0,
        "available": STARTER.credits,
    }
    (entry,) = ledger(stack, user)
    assert (entry["kind"], entry["delta_balance"], entry["reference"]) == (
        "purchase",
        STARTER.credits,
        session["session_id"],
    )
    # One Stripe customer per user, reused by the next checkout.
    customer = customer_of(stack, user)
    checkout(stack, user, "pack", "pro")
    assert customer_of(stack, user) == customer


def test_a_customer_deleted_at_stripe_is_replaced_once_and_paying_works_again(
    stack: RunningStack,
) -> None:
    """Deleted in Stripe's dashboard (here through the official SDK): checkout and the portal
    used to answer 503 stripe_unavailable for ever."""
    user = "dashboard-deleted"
    buy_starter(stack, user)
    wait_balance(stack, user, STARTER.credits)
    gone = customer_of(stack, user)
    assert sdk(stack).v1.customers.delete(gone).deleted

    portal = httpx.post(f"{stack.url}/v1/billing/portal", headers=stack.auth(user), timeout=30)
    assert portal.status_code == 201, portal.text
    replacement = customer_of(stack, user)
    assert replacement != gone
    session = checkout(stack, user, "pack", "starter")
    retrieved = sdk(stack).v1.checkout.sessions.retrieve(session["session_id"])
    assert retrieved.customer == replacement
    pay(session)
    wait_balance(stack, user, 2 * STARTER.credits)
    # Stored once; the old id kept for its late webhooks; one live customer at Stripe.
    assert stack.admin_sql(
        "SELECT stripe_customer_id, replaced_stripe_customer_ids FROM billing.accounts "
        "WHERE user_id = %s",
        f"user_{user}",
    ) == [(replacement, [gone])]
    mine = [
        c.id
        for c in sdk(stack).v1.customers.list(params={"limit": 100}).auto_paging_iter()
        if c.to_dict()["metadata"].get("user_id") == f"user_{user}"
    ]
    assert mine == [replacement]


def test_a_delayed_payment_is_credited_only_when_it_succeeds(stack: RunningStack) -> None:
    user = "slow-payer"
    session = checkout(stack, user, "pack", "starter")
    assert pay(session, "async")["payment_status"] == "unpaid"
    wait_for(
        "checkout.session.completed to be applied",
        lambda: stack.admin_sql(
            "SELECT outcome FROM billing.stripe_events WHERE type = "
            "'checkout.session.completed' AND payload->'data'->'object'->>'id' = %s",
            session["session_id"],
        ),
        lambda rows: rows == [("awaiting_payment",)],
    )
    assert balance(stack, user)["balance"] == 0
    emulator(stack, f"/_emulator/checkout/{session['session_id']}/settle", {"succeeded": True})
    wait_balance(stack, user, STARTER.credits)


def links(page: str) -> list[str]:
    return re.findall(r'href="([^"]+)"', page)


def asks_to_sign_in(response: httpx.Response, web: WebApp, going_to: str) -> None:
    """``response``, followed as a browser with no session follows it, ended at the web app's
    sign-in page, which keeps where the browser was going (``redirect_url``)."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    hops = [r for r in response.history if str(r.url).startswith(f"{web.url}/")]
    assert hops and hops[-1].status_code == 307, response.history
    landed = urlsplit(str(response.url))
    assert (f"{landed.scheme}://{landed.netloc}", landed.path) == (web.url, "/sign-in")
    assert parse_qs(landed.query)["redirect_url"] == [going_to]
    assert 'id="dev-user"' in response.text


def test_stripe_sends_the_browser_back_to_the_web_apps_billing_page(
    stack: RunningStack, web: WebApp
) -> None:
    """Checkout's success and cancel URLs and the portal's return URL, followed as a browser
    follows them, lead to the web app's billing page (it shows the credits arrive, from the
    webhook); a browser with no session is asked to sign in first, and sent on after."""
    assert stack.cfg.web_url == web.url
    user = "round-trip"
    session = checkout(stack, user, "pack", "starter")
    checkout_page = httpx.get(session["url"], timeout=10)
    (cancel_url,) = [html.unescape(u) for u in links(checkout_page.text) if "cancel" in u]
    assert cancel_url == f"{web.url}/billing?checkout=canceled"
    canceled = httpx.get(cancel_url, follow_redirects=True, timeout=10)
    asks_to_sign_in(canceled, web, "/billing?checkout=canceled")

    # The hosted page's form posts, and Stripe sends the browser to the success URL.
    paid = httpx.post(
        f"{session['url']}/pay", data={"outcome": "paid"}, follow_redirects=True, timeout=10
    )
    back = f"/billing?checkout=success&session_id={session['session_id']}"
    assert paid.history and paid.history[0].status_code == 303
    assert paid.history[0].headers["location"] == f"{web.url}{back}"
    asks_to_sign_in(paid, web, back)
    # With the session, the web app lets the browser through to the page itself.
    signed_in = httpx.get(
        f"{web.url}{back}", cookies={"__session": stack.token(user, azp=web.url)}, timeout=10
    )
    assert not signed_in.is_redirect, signed_in.headers

    portal = httpx.post(f"{stack.url}/v1/billing/portal", headers=stack.auth(user), timeout=30)
    assert portal.status_code == 201, portal.text
    (returned_to,) = [html.unescape(u) for u in links(httpx.get(portal.json()["url"]).text)]
    assert returned_to == f"{web.url}/billing"
    returned = httpx.get(returned_to, follow_redirects=True, timeout=10)
    asks_to_sign_in(returned, web, "/billing")


@pytest.mark.disruptive
def test_without_a_web_app_stripe_sends_the_browser_back_to_the_gateways_own_pages(
    stack: RunningStack,
) -> None:
    """A stack with no web origins (the API alone, for the CLI): Checkout and the billing
    portal send the browser back to the gateway's own small pages, which say what happened.
    Billing restarts configured so, then as it was."""
    argv, env = stack.processes.specs["billing"]
    _, without_web = processes(dataclasses.replace(stack.cfg, web_origins=()))["billing"]
    assert without_web["BILLING_PORTAL_RETURN_URL"] == f"{stack.url}/billing"
    stack.processes.stop("billing")
    stack.processes.specs["billing"] = (argv, without_web)
    try:
        stack.processes.start("billing")
        stack.processes.wait_ready()
        user = f"round-trip-{uuid.uuid4().hex[:8]}"
        session = checkout(stack, user, "pack", "starter")
        checkout_page = httpx.get(session["url"], timeout=10)
        (cancel_url,) = [html.unescape(u) for u in links(checkout_page.text) if "cancel" in u]
        assert cancel_url == f"{stack.url}/billing/canceled"
        canceled = httpx.get(cancel_url, follow_redirects=True, timeout=10)
        assert canceled.status_code == 200, canceled.text
        assert canceled.headers["content-type"].startswith("text/html")
        assert "Checkout canceled" in canceled.text and "Nothing was charged" in canceled.text

        paid = httpx.post(
            f"{session['url']}/pay", data={"outcome": "paid"}, follow_redirects=True, timeout=10
        )
        assert paid.history and paid.history[0].status_code == 303
        assert str(paid.url) == f"{stack.url}/billing/success?session_id={session['session_id']}"
        assert paid.status_code == 200, paid.text
        assert "your payment went through" in paid.text and "visiona balance" in paid.text

        portal = httpx.post(f"{stack.url}/v1/billing/portal", headers=stack.auth(user), timeout=30)
        assert portal.status_code == 201, portal.text
        (back,) = [html.unescape(u) for u in links(httpx.get(portal.json()["url"]).text)]
        assert back == f"{stack.url}/billing"
        returned = httpx.get(back, follow_redirects=True, timeout=10)
        assert returned.status_code == 200, returned.text
        assert "Back from billing" in returned.text
    finally:
        stack.processes.stop("billing")
        stack.processes.specs["billing"] = (argv, env)
        stack.processes.start("billing")
        stack.processes.wait_ready()


def test_unknown_packs_and_plans_and_bad_requests_are_4xx(stack: RunningStack) -> None:
    auth = stack.auth("confused")
    url = f"{stack.url}/v1/billing/checkout"
    for body, status, code in [
        ({"kind": "pack", "item_id": "nope"}, 404, "pack_not_found"),
        ({"kind": "plan", "item_id": "nope"}, 404, "plan_not_found"),
        ({"kind": "credits", "item_id": "starter"}, 422, "validation_error"),
        ({"kind": "pack"}, 422, "validation_error"),
    ]:
        response = httpx.post(url, headers=auth, json=body)
        assert (response.status_code, response.json()["code"]) == (status, code), body
    portal = httpx.post(f"{stack.url}/v1/billing/portal", headers=auth)
    assert (portal.status_code, portal.json()["code"]) == (409, "no_billing_account")
    assert httpx.post(url, json={"kind": "pack", "item_id": "starter"}).status_code == 401
    assert stack.admin_sql(
        "SELECT count(*) FROM billing.checkout_sessions WHERE user_id = 'user_confused'"
    ) == [(0,)]


def test_no_endpoint_lets_a_user_grant_credits(stack: RunningStack) -> None:
    user = "greedy"
    auth = stack.auth(user)
    for method, path in [
        ("POST", "/v1/billing/balance"),
        ("PUT", "/v1/billing/balance"),
        ("POST", "/v1/billing/ledger"),
        ("POST", "/v1/billing/adjust"),
        ("POST", "/v1/billing/credits"),
    ]:
        response = httpx.request(method, f"{stack.url}{path}", headers=auth, json={"credits": 999})
        assert response.status_code in (404, 405), (method, path, response.status_code)
    # The browser coming back from Checkout proves nothing: a session that was never paid.
    session = checkout(stack, user, "pack", "pro")
    httpx.get(session["url"])
    # A webhook forged with the wrong secret, for the user's real session, is refused.
    forged = json.dumps(
        {
            "id": f"evt_forged_{uuid.uuid4().hex}",
            "object": "event",
            "type": "checkout.session.completed",
            "data": {"object": {"id": session["session_id"], "client_reference_id": "user_greedy"}},
        }
    )
    header = stripe.WebhookSignature.generate_signature_header(forged, "whsec_attacker")
    response = httpx.post(
        f"{stack.url}/webhooks/stripe",
        content=forged,
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    # Refused before anything was stored: there is no event to apply, now or later.
    assert stack.admin_sql(
        "SELECT count(*) FROM billing.stripe_events WHERE payload::text LIKE %s",
        f"%{session['session_id']}%",
    ) == [(0,)]
    assert balance(stack, user)["balance"] == 0


# --- webhooks -------------------------------------------------------------------------------


def signed(stack: RunningStack, event: dict[str, Any], secret: str | None = None) -> httpx.Response:
    body = json.dumps(event)
    header = stripe.WebhookSignature.generate_signature_header(
        body, secret or stack.cfg.stripe_webhook_secret
    )
    return httpx.post(
        f"{stack.url}/webhooks/stripe",
        content=body,
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
    )


def event_row_count(stack: RunningStack, event_id: str) -> int:
    rows = stack.admin_sql("SELECT count(*) FROM billing.stripe_events WHERE id = %s", event_id)
    return int(rows[0][0])  # type: ignore[call-overload]


def test_bad_or_missing_signatures_are_400_and_store_nothing(stack: RunningStack) -> None:
    event_id = f"evt_{uuid.uuid4().hex}"
    event = {"id": event_id, "object": "event", "type": "customer.created", "data": {"object": {}}}
    body = json.dumps(event)
    url = f"{stack.url}/webhooks/stripe"
    missing = httpx.post(url, content=body)
    assert (missing.status_code, missing.json()["code"]) == (400, "signature_missing")
    wrong = signed(stack, event, secret="whsec_wrong")
    assert (wrong.status_code, wrong.json()["code"]) == (400, "signature_invalid")
    garbage = httpx.post(url, content=body, headers={"Stripe-Signature": "t=1,v1=abc"})
    assert garbage.status_code == 400
    stale = stripe.WebhookSignature.generate_signature_header(
        body, stack.cfg.stripe_webhook_secret, timestamp=int(time.time()) - 3600
    )
    old = httpx.post(url, content=body, headers={"Stripe-Signature": stale})
    assert (old.status_code, old.json()["code"]) == (400, "timestamp_too_old")
    assert "too old" in old.json()["detail"]
    # The right signature over a different body does not verify either.
    good = stripe.WebhookSignature.generate_signature_header(body, stack.cfg.stripe_webhook_secret)
    tampered = httpx.post(
        url, content=body.replace("customer.created", "invoice.paid"),
        headers={"Stripe-Signature": good},
    )  # fmt: skip
    assert tampered.status_code == 400
    assert event_row_count(stack, event_id) == 0

    ok = signed(stack, event)
    assert ok.status_code == 200 and ok.json() == {
        "received": True, "event_id": event_id, "duplicate": False
    }  # fmt: skip
    again = signed(stack, event)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    # Unknown types are acknowledged, kept and closed.
    assert stack.admin_sql("SELECT outcome FROM billing.stripe_events WHERE id = %s", event_id) == [
        ("ignored",)
    ]


def test_a_session_we_did_not_create_grants_nothing(stack: RunningStack) -> None:
    """Even a correctly signed event only credits checkout sessions billing itself opened."""
    event_id = f"evt_{uuid.uuid4().hex}"
    event = {
        "id": event_id,
        "object": "event",
        "type": "checkout.session.completed",
        "data": {
            "object": {
                "id": "cs_test_not_ours",
                "object": "checkout.session",
                "client_reference_id": "user_stranger",
                "mode": "payment",
                "payment_status": "paid",
                "status": "complete",
            }
        },
    }
    assert signed(stack, event).status_code == 200
    wait_for(
        "the event to be applied",
        lambda: stack.admin_sql(
            "SELECT outcome FROM billing.stripe_events WHERE id = %s", event_id
        ),
        lambda rows: rows == [("unknown_session",)],
    )
    assert balance(stack, "stranger")["balance"] == 0


# --- plans ----------------------------------------------------------------------------------


def test_the_price_list_answers_without_a_session_with_the_free_tier(
    stack: RunningStack,
) -> None:
    """The signed-out landing page shows the prices: anyone may read them, and what a
    stranger is told of their own plan is what a user who never subscribed has."""
    anonymous = httpx.get(f"{stack.url}/v1/billing/plans")
    assert anonymous.status_code == 200, anonymous.text
    catalogue = anonymous.json()
    assert catalogue["current"] == {
        "plan_id": None,
        "status": "none",
        "cancel_at_period_end": False,
        "current_period_end": None,
        "limits": catalogue["free_limits"],
    }
    # The same catalogue as a signed-in newcomer's, whose plan is the free tier too.
    assert plans(stack, f"window-shopper-{uuid.uuid4().hex[:8]}") == catalogue
    assert [p["id"] for p in catalogue["packs"]] == [p.id for p in CATALOG.packs]
    # Counted against the caller's address, as any request without a session.
    assert "ratelimit-limit" in anonymous.headers


def test_a_token_that_does_not_verify_is_refused_on_the_price_list(stack: RunningStack) -> None:
    """Open to strangers, but a client sending a token hears that it went bad rather than
    being answered as a stranger."""
    for headers in (
        {"Authorization": "Bearer not-a-token"},
        {"Cookie": "__session=not-a-token"},
    ):
        answer = httpx.get(f"{stack.url}/v1/billing/plans", headers=headers)
        assert answer.status_code == 401, (headers, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.headers["www-authenticate"].startswith("Bearer")


def test_subscribe_renew_twice_cancel_grants_once_per_invoice(stack: RunningStack) -> None:
    user = "subscriber"
    free = plans(stack, user)
    assert free["current"]["plan_id"] is None and free["current"]["status"] == "none"
    assert free["current"]["limits"] == free["free_limits"]

    session = checkout(stack, user, "plan", "creator")
    paid = pay(session)
    subscription = paid["subscription"]
    assert subscription.startswith("sub_")
    wait_balance(stack, user, CREATOR.monthly_credits)
    current = wait_for(
        "the plan to be active",
        lambda: plans(stack, user)["current"],
        lambda c: c["plan_id"] == "creator" and c["status"] == "active",
    )
    assert current["limits"] == CREATOR.limits.model_dump()
    # A second plan is refused while one is active: changes go through the portal.
    again = httpx.post(
        f"{stack.url}/v1/billing/checkout",
        headers=stack.auth(user),
        json={"kind": "plan", "item_id": "studio"},
    )
    assert (again.status_code, again.json()["code"]) == (409, "plan_already_active")
    portal = httpx.post(f"{stack.url}/v1/billing/portal", headers=stack.auth(user))
    assert portal.status_code == 201 and httpx.get(portal.json()["url"]).status_code == 200

    for n in (2, 3):
        renewed = emulator(stack, f"/_emulator/subscriptions/{subscription}/renew")
        assert renewed["invoice"]["billing_reason"] == "subscription_cycle"
        wait_balance(stack, user, n * CREATOR.monthly_credits)
    grants = [e for e in ledger(stack, user) if e["kind"] == "plan_grant"]
    assert len(grants) == 3 and len({g["reference"] for g in grants}) == 3

    # A failed renewal grants nothing; the plan stays (past_due) while Stripe retries.
    emulator(stack, f"/_emulator/subscriptions/{subscription}/renew", {"fail": True})
    wait_for(
        "past_due",
        lambda: plans(stack, user)["current"],
        lambda c: c["status"] == "past_due" and c["plan_id"] == "creator",
    )
    assert balance(stack, user)["balance"] == 3 * CREATOR.monthly_credits

    sdk(stack).v1.subscriptions.cancel(subscription)
    ended = wait_for(
        "the plan to end",
        lambda: plans(stack, user)["current"],
        lambda c: c["status"] == "canceled",
    )
    assert ended["limits"] == plans(stack, user)["free_limits"]
    # Credits already granted stay the user's.
    assert balance(stack, user)["balance"] == 3 * CREATOR.monthly_credits


# --- refunds --------------------------------------------------------------------------------


def test_a_refund_claws_back_what_it_paid_for_never_below_zero(stack: RunningStack) -> None:
    user = "refunded"
    paid = buy_starter(stack, user)
    wait_balance(stack, user, STARTER.credits)
    client = sdk(stack)
    intent = paid["payment_intent"]
    client.v1.refunds.create(params={"payment_intent": intent, "amount": STARTER.unit_amount // 2})
    wait_balance(stack, user, STARTER.credits - STARTER.credits // 2)

    # A generation is running (its credits held) when the rest of the payment is refunded.
    job = GenerationRequestedV1(
        user_id=f"user_{user}", generation_id=uuid.uuid4(), model_id=uuid.uuid4(), num_outputs=4
    )
    asyncio.run(publish(stack, job))
    left = STARTER.credits - STARTER.credits // 2
    wait_for(
        "the generation hold",
        lambda: balance(stack, user)["held"],
        lambda held: held == 4 * CATALOG.prices.generation_image,
    )
    held = balance(stack, user)["held"]
    client.v1.refunds.create(params={"payment_intent": intent})
    wait_for(
        "the second clawback",
        lambda: [e for e in ledger(stack, user) if e["kind"] == "refund_clawback"],
        lambda entries: len(entries) == 2,
    )
    final = balance(stack, user)
    assert final["available"] == 0 and final["balance"] == held
    shortfall = stack.admin_sql(
        "SELECT sum((metadata->>'uncollected')::int) FROM billing.ledger_entries "
        "WHERE user_id = %s AND kind = 'refund_clawback'",
        f"user_{user}",
    )
    assert shortfall == [(held,)] and left >= held


# --- every event, again and again, in any order --------------------------------------------


async def _deliver_all(stack: RunningStack, event_ids: list[str]) -> list[int]:
    async with httpx.AsyncClient(timeout=30) as client:

        async def one(event_id: str) -> int:
            response = await client.post(
                f"{stack.cfg.stripe_url}/_emulator/events/{event_id}/deliver"
            )
            response.raise_for_status()
            return int(response.json()["status_code"])

        statuses: list[int] = []
        for start in range(0, len(event_ids), 8):
            statuses += await asyncio.gather(*(one(e) for e in event_ids[start : start + 8]))
        return statuses


def test_every_stripe_event_replayed_ten_times_in_shuffled_order_applies_once(
    stack: RunningStack,
) -> None:
    user = "replayer"
    client = sdk(stack)
    emulator(stack, "/_emulator/config", {"paused": True})
    try:
        pack = pay(checkout(stack, user, "pack", "starter"))
        sub = pay(checkout(stack, user, "plan", "creator"))["subscription"]
        emulator(stack, f"/_emulator/subscriptions/{sub}/renew")
        client.v1.refunds.create(
            params={"payment_intent": pack["payment_intent"], "amount": STARTER.unit_amount // 4}
        )
        client.v1.subscriptions.update(sub, params={"cancel_at_period_end": True})
        customer = customer_of(stack, user)
        events = [
            e
            for e in client.v1.events.list(params={"limit": 100}).data
            if customer in json.dumps(e.to_dict(), default=str)
        ]
        ids = [e.id for e in events]
        assert {e.type for e in events} >= {
            "checkout.session.completed",
            "invoice.paid",
            "charge.refunded",
            "customer.subscription.updated",
        }
        assert balance(stack, user)["balance"] == 0  # nothing delivered yet
        replays = ids * 10
        random.Random(7).shuffle(replays)
        statuses = asyncio.run(_deliver_all(stack, replays))
        assert set(statuses) == {200}
    finally:
        emulator(stack, "/_emulator/config", {"paused": False})  # and the queued originals

    expected = STARTER.credits - STARTER.credits // 4 + 2 * CREATOR.monthly_credits
    wait_balance(stack, user, expected)
    wait_stripe_delivered(stack)
    wait_for(
        "every stored event to be applied",
        lambda: stack.admin_sql(
            "SELECT count(*) FROM billing.stripe_events WHERE processed_at IS NULL "
            "AND payload::text LIKE %s",
            f"%{customer}%",
        ),
        lambda rows: rows == [(0,)],
    )
    kinds = sorted(e["kind"] for e in ledger(stack, user))
    assert kinds == ["plan_grant", "plan_grant", "purchase", "refund_clawback"]
    assert balance(stack, user)["balance"] == expected
    assert stack.admin_sql(
        "SELECT count(*) FROM billing.stripe_events WHERE id = ANY(%s)", ids
    ) == [(len(ids),)]
    current = plans(stack, user)["current"]
    assert (current["plan_id"], current["cancel_at_period_end"]) == ("creator", True)


# --- the hold saga, as the training and generation services will drive it -----------------


async def publish(stack: RunningStack, *events: Event) -> None:
    bus = EventBus(stack.cfg.amqp_url, stack.cfg.exchange, queue_prefix=stack.cfg.queue_prefix)
    await bus.connect()
    try:
        for event in events:
            await bus.publish_event(event)
    finally:
        await bus.close()


def outbox(stack: RunningStack, routing_key: str, job_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = stack.admin_sql(
        "SELECT payload FROM billing.outbox WHERE routing_key = %s AND payload->>'job_id' = %s",
        routing_key,
        str(job_id),
    )
    return [dict(r[0]) for r in rows]  # type: ignore[call-overload]


def test_holds_reserve_capture_what_was_delivered_and_release_the_rest(
    stack: RunningStack,
) -> None:
    user = "generator"
    buy_starter(stack, user)
    wait_balance(stack, user, STARTER.credits)
    uid, price = f"user_{user}", CATALOG.prices.generation_image
    generation, training, too_big = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    model = uuid.uuid4()
    requested = GenerationRequestedV1(
        user_id=uid, generation_id=generation, model_id=model, num_outputs=4
    )
    asyncio.run(publish(stack, requested, requested))  # a duplicate delivery too
    reserved = wait_for(
        "credits.reserved",
        lambda: outbox(stack, "billing.credits.reserved.v1", generation),
        lambda rows: len(rows) >= 1,
    )
    assert reserved[0]["credits"] == 4 * price
    assert balance(stack, user) == {
        "balance": STARTER.credits,
        "held": 4 * price,
        "available": STARTER.credits - 4 * price,
    }
    # 3 of 4 images delivered: 3 paid for, 1 released.
    asyncio.run(
        publish(
            stack,
            GenerationSucceededV1(user_id=uid, generation_id=generation, requested=4, delivered=3),
        )
    )
    after = wait_balance(stack, user, STARTER.credits - 3 * price)
    assert after["held"] == 0
    kinds = [(e["kind"], e["delta_balance"], e["delta_held"]) for e in ledger(stack, user)[:3]]
    assert kinds == [("release", 0, -price), ("capture", -3 * price, -3 * price),
                     ("hold", 0, 4 * price)]  # fmt: skip

    # A training: reserved, then failed → everything released.
    asyncio.run(
        publish(stack, TrainingRequestedV1(user_id=uid, training_id=training, model_id=model))
    )
    wait_for("the training hold", lambda: balance(stack, user)["held"], lambda h: h > 0)
    asyncio.run(
        publish(
            stack,
            TrainingFailedV1(user_id=uid, training_id=training, model_id=model, reason="nsfw"),
        )
    )
    wait_for("the release", lambda: balance(stack, user)["held"], lambda h: h == 0)
    assert balance(stack, user)["balance"] == STARTER.credits - 3 * price
    # A late success of the failed training changes nothing: the hold is settled.
    asyncio.run(
        publish(
            stack,
            ModelReadyV1(user_id=uid, model_id=model, training_id=training, version="v:1"),
        )
    )

    # A running training holds its price; a second one does not fit: rejected with the
    # reason, and a duplicate request gets the same answer without holding anything.
    left = STARTER.credits - 3 * price
    running, too_big = uuid.uuid4(), uuid.uuid4()
    asyncio.run(
        publish(stack, TrainingRequestedV1(user_id=uid, training_id=running, model_id=model))
    )
    wait_for("the hold", lambda: balance(stack, user)["held"], lambda h: h > 0)
    assert left - CATALOG.prices.training < CATALOG.prices.training
    big = TrainingRequestedV1(user_id=uid, training_id=too_big, model_id=model)
    # The same event twice (one answer) and the same request as a new event (answered again).
    retried = TrainingRequestedV1(user_id=uid, training_id=too_big, model_id=model)
    asyncio.run(publish(stack, big, big, retried))
    rejected = wait_for(
        "credits.rejected",
        lambda: outbox(stack, "billing.credits.rejected.v1", too_big),
        lambda rows: len(rows) == 2,
    )
    assert {(r["reason"], r["required"], r["available"]) for r in rejected} == {
        ("insufficient_credits", CATALOG.prices.training, left - CATALOG.prices.training)
    }
    assert balance(stack, user) == {
        "balance": left,
        "held": CATALOG.prices.training,
        "available": left - CATALOG.prices.training,
    }


@pytest.mark.parametrize("cursor", ["abc", "-1", "9" * 40])
def test_bad_ledger_cursors_are_422(stack: RunningStack, cursor: str) -> None:
    response = httpx.get(
        f"{stack.url}/v1/billing/ledger", headers=stack.auth("pager"), params={"cursor": cursor}
    )
    assert response.status_code == 422, response.text


def test_the_ledger_pages_with_a_cursor(stack: RunningStack) -> None:
    user = "pager"
    for _ in range(3):
        buy_starter(stack, user)
    wait_balance(stack, user, 3 * STARTER.credits)
    auth = stack.auth(user)
    first = httpx.get(f"{stack.url}/v1/billing/ledger", headers=auth, params={"limit": 2}).json()
    assert len(first["entries"]) == 2 and first["next_cursor"]
    second = httpx.get(
        f"{stack.url}/v1/billing/ledger",
        headers=auth,
        params={"limit": 2, "cursor": first["next_cursor"]},
    ).json()
    assert len(second["entries"]) == 1 and second["next_cursor"] is None
    ids = [e["id"] for e in first["entries"] + second["entries"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 3
    # Another user's view is empty.
    assert ledger(stack, "not-the-pager") == []


# --- manual adjustments: internal gRPC only -------------------------------------------------


def test_adjustments_are_internal_audited_idempotent_and_never_negative(
    stack: RunningStack,
) -> None:
    import grpc

    from visiona.billing.v1 import billing_pb2, billing_pb2_grpc
    from visiona.kit.grpcserver import INTERNAL_TOKEN_KEY
    from visiona.kit.internal_token import Minter

    # An operator's tool holds the internal secret and acts as the system principal.
    system = (
        (INTERNAL_TOKEN_KEY, Minter(stack.cfg.internal_token_secret, issuer="ops").token(None)),
    )
    user = "adjusted"
    with grpc.insecure_channel(f"127.0.0.1:{stack.cfg.ports['billing']}") as channel:
        billing = billing_pb2_grpc.BillingServiceStub(channel)

        def adjust(delta: int, key: str, reason: str = "goodwill", actor: str = "ops:jo") -> Any:
            return billing.AdjustCredits(
                billing_pb2.AdjustCreditsRequest(
                    user_id=f"user_{user}", delta=delta, reason=reason, actor=actor,
                    idempotency_key=key,
                ),
                timeout=10,
                metadata=system,
            )  # fmt: skip

        first = adjust(50, "ticket-1")
        assert (first.applied, first.balance, first.available) == (True, 50, 50)
        assert adjust(50, "ticket-1").applied is False
        assert adjust(-20, "ticket-2").balance == 30
        for delta, key, reason, status in [
            (-31, "ticket-3", "too much", grpc.StatusCode.FAILED_PRECONDITION),
            (5, "ticket-4", "", grpc.StatusCode.INVALID_ARGUMENT),
            (0, "ticket-5", "zero", grpc.StatusCode.INVALID_ARGUMENT),
        ]:
            with pytest.raises(grpc.RpcError) as info:
                adjust(delta, key, reason)
            assert info.value.code() == status
    assert balance(stack, user)["balance"] == 30
    audit = stack.admin_sql(
        "SELECT delta_balance, actor, reason FROM billing.ledger_entries WHERE user_id = %s "
        "AND kind = 'adjustment' ORDER BY id",
        f"user_{user}",
    )
    assert audit == [(50, "ops:jo", "goodwill"), (-20, "ops:jo", "goodwill")]
    # Users have no way to it: only operators' routes adjust credits (and to everyone else
    # they are an unknown route: tests/e2e/test_isolation.py).
    spec = httpx.get(f"{stack.url}/openapi.json").json()
    assert not [
        p
        for p in spec["paths"]
        if ("adjust" in p or "credit" in p) and not p.startswith("/v1/admin/")
    ]


@pytest.mark.disruptive
def test_a_hold_without_an_outcome_expires_in_the_running_service(
    stack: RunningStack, tmp_path: Any
) -> None:
    """The billing process's own sweeper releases a lapsed hold and tells the job service."""
    # The shipped catalogue, with a one-second generation hold.
    data = json.loads(CATALOG.model_dump_json())
    data["hold_ttl_s"]["generation"] = 1
    path = tmp_path / "catalog.toml"
    path.write_text(_toml(data))
    argv, env = stack.processes.specs["billing"]
    fast = env | {"BILLING_CATALOG_FILE": str(path), "BILLING_HOLD_SWEEP_INTERVAL_S": "0.5"}
    stack.processes.stop("billing")
    stack.processes.specs["billing"] = (argv, fast)
    try:
        stack.processes.start("billing")
        stack.processes.wait_ready()
        user = "lapsed"
        buy_starter(stack, user)
        wait_balance(stack, user, STARTER.credits)
        job = uuid.uuid4()
        asyncio.run(
            publish(
                stack,
                GenerationRequestedV1(
                    user_id=f"user_{user}", generation_id=job, model_id=uuid.uuid4(), num_outputs=2
                ),
            )
        )
        expired = wait_for(
            "billing.hold.expired",
            lambda: outbox(stack, "billing.hold.expired.v1", job),
            lambda rows: len(rows) == 1,
        )
        assert expired[0]["credits"] == 2 * CATALOG.prices.generation_image
        assert balance(stack, user) == {
            "balance": STARTER.credits, "held": 0, "available": STARTER.credits
        }  # fmt: skip
    finally:
        stack.processes.stop("billing")
        stack.processes.specs["billing"] = (argv, env)
        stack.processes.start("billing")
        stack.processes.wait_ready()


def _toml(data: dict[str, Any]) -> str:
    """The catalogue's shape as TOML (tables of scalars and arrays of tables)."""
    lines: list[str] = []
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict | list)}
    lines += [f"{k} = {json.dumps(v)}" for k, v in scalars.items()]
    for key, value in data.items():
        if isinstance(value, dict):
            lines.append(f"[{key}]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in value.items()]
        elif isinstance(value, list):
            for item in value:
                lines.append(f"[[{key}]]")
                lines += [f"{k} = {json.dumps(v)}" for k, v in item.items()]
    return "\n".join(lines) + "\n"


def test_refunding_a_plan_invoice_claws_back_that_months_credits(stack: RunningStack) -> None:
    user = "plan-refund"
    sub = pay(checkout(stack, user, "plan", "creator"))["subscription"]
    wait_balance(stack, user, CREATOR.monthly_credits)
    client = sdk(stack)
    invoice = client.v1.subscriptions.retrieve(sub).latest_invoice
    payments = client.v1.invoice_payments.list(params={"invoice": str(invoice)}).data
    intent = payments[0].payment.payment_intent  # type: ignore[attr-defined]
    client.v1.refunds.create(params={"payment_intent": str(intent)})
    wait_balance(stack, user, 0)
    (entry,) = [e for e in ledger(stack, user) if e["kind"] == "refund_clawback"]
    assert entry["delta_balance"] == -CREATOR.monthly_credits


def test_an_oversized_webhook_body_is_413_declared_or_chunked(stack: RunningStack) -> None:
    url = f"{stack.url}/webhooks/stripe"
    big = b"x" * (512 * 1024 + 1)
    headers = {"Stripe-Signature": "t=1,v1=00"}
    assert httpx.post(url, content=big, headers=headers).status_code == 413

    def chunked() -> Iterator[bytes]:
        yield big[:300_000]
        yield big[300_000:]

    response = httpx.post(url, content=chunked(), headers=headers)
    assert (response.status_code, response.json()["code"]) == (413, "payload_too_large")
