"""Billing under faults: a crash or an outage between any two steps loses no credit and grants
none twice (outbox, inbox, stored webhooks, Stripe's retries)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from tests.e2e.test_billing import (
    STARTER,
    _deliver_all,
    balance,
    checkout,
    customer_of,
    emulator,
    ledger,
    pay,
    sdk,
    wait_balance,
    wait_stripe_delivered,
)
from tests.support.stack import RunningStack
from tests.support.waiting import wait_for


def deliveries(stack: RunningStack, event_ids: set[str]) -> list[dict[str, object]]:
    response = httpx.get(f"{stack.cfg.stripe_url}/_emulator/deliveries")
    return [d for d in response.json() if d["event_id"] in event_ids]


@pytest.mark.disruptive
def test_a_webhook_sent_while_billing_is_down_is_retried_by_stripe_and_credited_once(
    stack: RunningStack,
) -> None:
    user = "outage"
    # Stripe keeps trying for days; here for about a minute, which outlasts a billing restart
    # on a loaded machine (six tries in 16 s did not, once: the event was given up on).
    delays = [0.3, 0.5, 1, 2, 4, 8, 15, 30]
    emulator(stack, "/_emulator/config", {"paused": True, "retry_delays_s": delays})
    try:
        session = checkout(stack, user, "pack", "starter")
        pay(session)
        stack.processes.stop("billing")
        try:
            emulator(stack, "/_emulator/config", {"paused": False})
            wait_for(
                "Stripe's first attempt to meet the outage",
                lambda: httpx.get(f"{stack.cfg.stripe_url}/_emulator/deliveries").json(),
                lambda ds: any(d["status_code"] == 503 for d in ds),
            )
        finally:
            stack.processes.start("billing")
            stack.processes.wait_ready()
        wait_balance(stack, user, STARTER.credits, timeout_s=sum(delays))
    finally:
        emulator(
            stack, "/_emulator/config", {"paused": False, "retry_delays_s": [0.2, 0.5, 1, 2, 5, 10]}
        )
    events = {
        e.id
        for e in sdk(stack).v1.events.list(params={"type": "checkout.session.completed"}).data
        if e.data.object.id == session["session_id"]  # type: ignore[attr-defined]
    }
    statuses = [d["status_code"] for d in deliveries(stack, events)]
    assert 503 in statuses and statuses[-1] == 200, statuses
    assert [e["kind"] for e in ledger(stack, user)] == ["purchase"]


@pytest.mark.disruptive
def test_killing_billing_while_it_applies_events_loses_and_doubles_nothing(
    stack: RunningStack,
) -> None:
    user = "crashy"
    emulator(stack, "/_emulator/config", {"paused": True})
    try:
        for _ in range(4):
            pay(checkout(stack, user, "pack", "starter"))
        customer = customer_of(stack, user)
        ids = [
            e.id
            for e in sdk(stack).v1.events.list(params={"limit": 100}).data
            if customer in json.dumps(e.to_dict(), default=str)
        ]
        # Stored (200), then billing dies at once: some applied, some not, some half-way.
        assert set(asyncio.run(_deliver_all(stack, ids))) == {200}
        stack.processes.kill("billing")
        stack.processes.start("billing")
        stack.processes.wait_ready()
        wait_balance(stack, user, 4 * STARTER.credits)
        # Stripe sends everything again after the crash: nothing changes.
        assert set(asyncio.run(_deliver_all(stack, ids * 3))) == {200}
    finally:
        emulator(stack, "/_emulator/config", {"paused": False})
    # The queued originals arrive too; once they have, and billing has applied everything
    # it stored, nothing more can change.
    wait_stripe_delivered(stack)
    wait_for(
        "every stored event to be applied",
        lambda: stack.admin_sql(
            "SELECT count(*) FROM billing.stripe_events WHERE id = ANY(%s) "
            "AND processed_at IS NULL",
            ids,
        ),
        lambda rows: rows == [(0,)],
    )
    assert balance(stack, user)["balance"] == 4 * STARTER.credits
    assert [e["kind"] for e in ledger(stack, user)] == ["purchase"] * 4


def test_a_checkout_billing_forgot_to_record_is_still_credited(stack: RunningStack) -> None:
    """Billing crashed after Stripe created the session and before it stored its row: the
    session's own metadata (only our key can write it) still says what was bought."""
    user = "forgotten"
    uid = f"user_{user}"
    client = sdk(stack)
    customer = client.v1.customers.create(params={"metadata": {"user_id": uid}})
    metadata = {"user_id": uid, "kind": "pack", "item_id": "starter"}
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "customer": customer.id,
            "client_reference_id": uid,
            "line_items": [{"price": STARTER.stripe_price, "quantity": 1}],
            "success_url": "http://localhost/ok",
            "metadata": metadata,
            "payment_intent_data": {"metadata": metadata},
        }
    )
    assert stack.admin_sql(
        "SELECT count(*) FROM billing.checkout_sessions WHERE id = %s", session.id
    ) == [(0,)]
    pay({"url": session.url})
    wait_balance(stack, user, STARTER.credits)
    assert stack.admin_sql(
        "SELECT kind, item_id, credits FROM billing.checkout_sessions WHERE id = %s", session.id
    ) == [("pack", "starter", STARTER.credits)]
