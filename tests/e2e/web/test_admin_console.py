"""The operator console in a browser (web/components/admin, ADR 0015), on the running stack:
an operator signed in through the dev sign-in's operator switch finds a stuck generation and
fails it with a reason (the owner's held credits come back), looks the owner up and grants
them credits (which the owner's own balance then shows; a claw-back past the balance is
refused in words), discards a dead letter and reads the outboxes. A user without the role has
no Operations entry and their /admin is the app's not-found page. Every section is
photographed at phone and desktop width and checked by axe."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from playwright.sync_api import BrowserContext, Locator, Page, expect

from tests.e2e.test_admin import dead_letters_of, letter, publish_poison, stuck_generation
from tests.e2e.test_billing import balance
from tests.e2e.test_generation import AFTER_TRAINING, IMAGE
from tests.e2e.web.test_journey import look
from tests.support.stack import RunningStack
from tests.support.waiting import wait_for
from tests.support.web import (
    PHONE,
    Screens,
    assert_accessible,
    assert_toasts_clear_the_bottom_nav,
    balance_chip,
    new_user,
    sign_in,
)

GRANTED = 25


def sign_in_as_operator(context: BrowserContext, user: str) -> Page:
    """Sign ``user`` in through the dev sign-in page with its operator switch on."""
    page = context.new_page()
    page.goto("/sign-in")
    page.fill("#dev-user", user)
    page.get_by_role("switch", name="Sign in as an operator").click()
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/dashboard")
    return page


def shown(locator: Locator) -> Locator:
    """What of ``locator`` is on screen: lists are drawn twice, a table and a phone's list."""
    return locator.filter(visible=True)


def section(page: Page, name: str) -> None:
    page.get_by_role("tab", name=name).click()
    expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()


def in_thread(work: Callable[[], Any]) -> Any:
    """Run ``work`` outside the sync Playwright's own event loop (asyncio.run needs none)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(work).result()


def fail_the_stuck_generation(page: Page, shots: Screens, gen_id: str, user_id: str) -> None:
    page.get_by_role("combobox", name="Older than").click()
    page.get_by_role("option", name="Any age").click()
    row = shown(page.locator(f"[data-job-id='{gen_id}']"))
    expect(row).to_be_visible()
    expect(row).to_contain_text(user_id)
    expect(row).to_contain_text("Asking the provider")
    look(page, shots, "admin-jobs")

    row.get_by_role("button", name=f"Fail generation {gen_id}").click()
    dialog = page.get_by_role("alertdialog")
    expect(dialog).to_contain_text("the credits it holds are released")
    confirm = dialog.get_by_role("button", name="Fail generation")
    expect(confirm).to_be_disabled()
    dialog.get_by_label("Reason").fill("ticket 42: stuck at the provider")
    shots.take(page, "admin-jobs-fail-dialog")
    confirm.click()
    expect(page.get_by_text("The credits it held are being released")).to_be_visible()
    expect(page.locator(f"[data-job-id='{gen_id}']")).to_have_count(0)


def grant_credits(page: Page, shots: Screens, user_id: str) -> None:
    section(page, "Users")
    page.get_by_label("User id").fill(user_id)
    page.get_by_label("Reason").fill("ticket 42: sorry for the wait")
    page.get_by_role("button", name="Look up").click()
    expect(page.get_by_test_id("lookup-balance")).to_have_text(str(AFTER_TRAINING))
    expect(shown(page.locator("[data-ledger-kind=release]")).first).to_be_visible()

    page.get_by_role("button", name="Grant credits").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Credits").fill(str(GRANTED))
    dialog.get_by_label("Reason").fill("ticket 42: goodwill")
    dialog.get_by_role("button", name=f"Grant {GRANTED} credits").click()
    expect(page.get_by_text(f"Granted {GRANTED} credits to {user_id}")).to_be_visible()
    assert_toasts_clear_the_bottom_nav(page)
    expect(page.get_by_test_id("lookup-balance")).to_have_text(str(AFTER_TRAINING + GRANTED))

    # More than they have: refused, said in words, nothing taken.
    too_much = AFTER_TRAINING + GRANTED + 1
    page.get_by_role("button", name="Claw back credits").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Credits").fill(str(too_much))
    dialog.get_by_label("Reason").fill("ticket 43: chargeback")
    dialog.get_by_role("button", name=f"Take back {too_much} credits").click()
    expect(dialog.get_by_role("alert")).to_contain_text("Not that many credits to take back")
    shots.take(page, "admin-users-clawback-refused")
    dialog.get_by_role("button", name="Cancel").click()
    expect(page.get_by_test_id("lookup-balance")).to_have_text(str(AFTER_TRAINING + GRANTED))
    look(page, shots, "admin-users")


def discard_a_dead_letter(page: Page, shots: Screens, stack: RunningStack) -> None:
    event_id = in_thread(lambda: asyncio.run(publish_poison(stack, "billing.credits.changed.v1")))
    wait_for(
        "the poison message dead-lettered",
        lambda: letter(dead_letters_of(stack, "gateway"), "gateway-audit", event_id),
        lambda found: bool(found),
    )
    section(page, "Dead letters")
    row = shown(page.locator(f"[data-event-id='{event_id}']"))
    expect(row).to_contain_text("Rejected")
    look(page, shots, "admin-dead-letters")
    row.get_by_role("button", name=f"Discard event {event_id}").click()
    dialog = page.get_by_role("alertdialog")
    dialog.get_by_label("Reason").fill("garbage, not ours")
    dialog.get_by_role("button", name="Discard for good").click()
    expect(page.get_by_text("Discarded. It will never be applied.")).to_be_visible()
    expect(page.locator(f"[data-event-id='{event_id}']")).to_have_count(0)


def read_the_outboxes(page: Page, shots: Screens, stack: RunningStack) -> None:
    # A row billing's relay will not reach for an hour, written 90 s ago: billing is behind.
    stack.admin_sql(
        "INSERT INTO billing.outbox (event_id, routing_key, payload, headers, next_attempt_at, "
        "created_at) VALUES (gen_random_uuid(), 'billing.test.console_held_back.v1', '{}', '{}', "
        "now() + interval '1 hour', now() - interval '90 seconds')"
    )
    try:
        section(page, "Outbox")
        expect(shown(page.locator("[data-service]"))).to_have_count(5)
        expect(shown(page.locator("[data-service=billing]"))).to_contain_text("Behind")
        look(page, shots, "admin-outbox")
    finally:
        stack.admin_sql(
            "DELETE FROM billing.outbox WHERE routing_key = 'billing.test.console_held_back.v1'"
        )


def test_an_operator_fails_a_stuck_generation_and_grants_credits(
    stack: RunningStack,
    owner: tuple[str, dict[str, Any]],
    new_context: Callable[..., BrowserContext],
    shots: Screens,
) -> None:
    user, model = owner
    user_id = f"user_{user}"
    gen = stuck_generation(stack, user, model)
    assert balance(stack, user)["held"] == 2 * IMAGE

    page = sign_in_as_operator(new_context(), new_user("ops"))
    page.get_by_role("link", name="Operations").click()
    page.wait_for_url("**/admin")
    expect(page.get_by_role("heading", name="Operations", level=1)).to_be_visible()

    fail_the_stuck_generation(page, shots, gen["id"], user_id)
    wait_for(
        "the hold released",
        lambda: balance(stack, user),
        lambda b: b == {"balance": AFTER_TRAINING, "held": 0, "available": AFTER_TRAINING},
    )
    grant_credits(page, shots, user_id)
    owner_page = sign_in(new_context(), user)
    expect(balance_chip(owner_page, AFTER_TRAINING + GRANTED)).to_be_visible()

    discard_a_dead_letter(page, shots, stack)
    read_the_outboxes(page, shots, stack)


def test_a_user_has_no_operations_and_their_admin_page_is_not_found(
    new_context: Callable[..., BrowserContext], shots: Screens
) -> None:
    page = sign_in(new_context(), new_user("plain"))
    expect(page.get_by_role("link", name="Account").first).to_be_visible()
    expect(page.get_by_role("link", name=re.compile("^(Operations|Ops)$"))).to_have_count(0)
    page.set_viewport_size(PHONE)
    expect(page.get_by_role("link", name="Home")).to_be_visible()
    expect(page.get_by_role("link", name=re.compile("^(Operations|Ops)$"))).to_have_count(0)
    page.goto("/admin")
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    expect(page.get_by_role("heading", name="Operations")).to_have_count(0)
    shots.take(page, "admin-not-found")
    assert_accessible(page, "the not-found page")
