"""Billing's other rules without I/O: ledger keys and refunds, entitlements, what a checkout
sells or recovers, and what is kept of a Stripe event."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from visiona.billing.domain.catalog import Catalog
from visiona.billing.domain.checkout import checkout_item, recover_session
from visiona.billing.domain.hold import HoldStatus
from visiona.billing.domain.ledger import (
    ENTRY_KINDS,
    Balance,
    clawback_due,
    clawback_key,
    plan_grant_key,
    purchase_key,
)
from visiona.billing.domain.stripe_event import (
    DEFERRED,
    HANDLED_TYPES,
    is_handled,
    kept_payload,
    redacted,
)
from visiona.billing.domain.subscription import Subscription, entitlements, plan_change
from visiona.billing.service.stripe_events import StripeEventApplier
from visiona.kit.errors import InvalidArgument, NotFound

CATALOG = Catalog.load()
PLAN = CATALOG.plans[0]
PACK = CATALOG.packs[0]
END = datetime(2026, 2, 1, tzinfo=UTC)
LEDGER_MIGRATION = (
    Path(__file__).parents[1] / "migrations" / "versions" / "0002_ledger.py"
).read_text()


def allowed_by(constraint: str) -> set[str]:
    """The values a CHECK (... IN (...)) of the ledger's migration allows."""
    found = re.search(constraint + r" CHECK \(\s*\w+ IN \(([^)]*)\)", LEDGER_MIGRATION)
    assert found is not None, constraint
    return set(re.findall(r"'(\w+)'", found.group(1)))


def test_the_entry_kinds_are_those_the_ledger_table_allows() -> None:
    assert allowed_by("CONSTRAINT ledger_kind") == ENTRY_KINDS


def test_the_hold_states_are_those_the_holds_table_allows() -> None:
    assert allowed_by("CONSTRAINT hold_status") == set(HoldStatus)


def test_available_credits_are_the_balance_less_what_is_held() -> None:
    assert Balance(100, 30).available == 70


def test_credit_keys_follow_from_the_stripe_object_that_paid_for_them() -> None:
    assert purchase_key("cs_1") == "purchase:cs_1"
    assert plan_grant_key("in_1") == "plan_grant:in_1"
    # Each further refund of a charge is another clawback; the same one again is not.
    assert clawback_key("ch_1", 450) != clawback_key("ch_1", 900)


def test_a_refund_claws_back_the_share_of_credits_its_share_of_the_payment_bought() -> None:
    assert clawback_due(granted=200, amount=900, refunded=450, asked=0) == 100
    # A second refund takes what the total refunded bought, less what the first asked.
    assert clawback_due(granted=200, amount=900, refunded=900, asked=100) == 100
    # Stripe never refunds more than the charge; if it said so, the whole grant at most.
    assert clawback_due(granted=200, amount=900, refunded=1000, asked=0) == 200
    assert clawback_due(granted=200, amount=900, refunded=450, asked=100) == 0


def test_without_a_subscription_the_free_tier_applies() -> None:
    none = entitlements(None, CATALOG)
    assert (none.plan_id, none.status, none.limits, none.has_plan) == (
        None,
        "none",
        CATALOG.free,
        False,
    )


@pytest.mark.parametrize("status", ["active", "trialing", "past_due"])
def test_an_entitled_subscription_gives_its_plans_limits(status: str) -> None:
    ent = entitlements(Subscription(PLAN.id, status, False, END), CATALOG)
    assert ent.limits == PLAN.limits and ent.has_plan


@pytest.mark.parametrize("status", ["canceled", "unpaid", "incomplete_expired"])
def test_an_ended_subscription_keeps_its_plan_name_but_gives_free_limits(status: str) -> None:
    ent = entitlements(Subscription(PLAN.id, status, True, END), CATALOG)
    assert (ent.plan_id, ent.limits, ent.has_plan) == (PLAN.id, CATALOG.free, False)


def test_a_plan_change_is_raised_only_when_plan_or_status_is_new() -> None:
    assert plan_change("u", (PLAN.id, "active"), PLAN.id, "active") is None
    changed = plan_change("u", (PLAN.id, "active"), PLAN.id, "canceled")
    assert changed is not None and changed.status == "canceled"
    first = plan_change("u", None, PLAN.id, "active")
    assert first is not None and first.plan_id == PLAN.id


def test_a_checkout_sells_a_pack_or_a_plan_of_the_catalogue() -> None:
    pack = checkout_item(CATALOG, "pack", PACK.id)
    assert (pack.stripe_price, pack.credits, pack.amount) == (
        PACK.stripe_price,
        PACK.credits,
        PACK.unit_amount,
    )
    plan = checkout_item(CATALOG, "plan", PLAN.id)
    assert (plan.stripe_price, plan.credits) == (PLAN.stripe_price, PLAN.monthly_credits)


def test_a_checkout_of_anything_else_is_refused() -> None:
    with pytest.raises(NotFound) as pack:
        checkout_item(CATALOG, "pack", "no-such-pack")
    with pytest.raises(NotFound) as plan:
        checkout_item(CATALOG, "plan", "no-such-plan")
    with pytest.raises(InvalidArgument) as kind:
        checkout_item(CATALOG, "gift", PACK.id)
    assert (pack.value.code, plan.value.code, kind.value.code) == (
        "pack_not_found",
        "plan_not_found",
        "checkout_kind_invalid",
    )


def session(user_id: str = "u", **metadata: str) -> dict[str, object]:
    return {
        "client_reference_id": user_id,
        "metadata": {"user_id": user_id, **metadata},
        "amount_total": 900,
        "currency": "usd",
    }


def test_a_session_never_recorded_is_recovered_from_its_metadata_priced_by_the_catalogue() -> None:
    recovered = recover_session(CATALOG, session(kind="pack", item_id=PACK.id), "u")
    assert recovered is not None
    assert (recovered.kind, recovered.item_id, recovered.credits, recovered.amount) == (
        "pack",
        PACK.id,
        PACK.credits,
        900,
    )
    plan = recover_session(CATALOG, session(kind="plan", item_id=PLAN.id), "u")
    assert plan is not None and plan.credits == PLAN.monthly_credits


def test_a_session_of_another_user_or_of_nothing_we_sell_is_not_recovered() -> None:
    assert recover_session(CATALOG, session("v", kind="pack", item_id=PACK.id), "u") is None
    assert recover_session(CATALOG, session(kind="pack", item_id="no-such-pack"), "u") is None


def test_every_event_type_billing_stores_for_applying_has_a_handler() -> None:
    applier = StripeEventApplier(CATALOG, object())  # type: ignore[arg-type]
    assert set(applier.handlers) == HANDLED_TYPES
    assert is_handled("invoice.paid") and not is_handled("customer.updated")


def test_an_event_that_concerns_no_user_of_ours_keeps_only_its_id_type_and_time() -> None:
    event = {"id": "evt_1", "type": "invoice.paid", "created": 1, "data": {"object": {}}}
    assert redacted(event) == {
        "id": "evt_1",
        "object": "event",
        "type": "invoice.paid",
        "created": 1,
        "redacted": True,
    }
    assert kept_payload("not_ours", event) == redacted(event)
    assert kept_payload("unknown_customer", event) == redacted(event)
    assert kept_payload("granted", event) is None
    # A refund waiting for its grant stays open with everything it needs.
    assert kept_payload("awaiting_payment_grant", event) is None
    assert "awaiting_payment_grant" in DEFERRED
