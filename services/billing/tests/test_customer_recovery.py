"""A Stripe customer Stripe no longer has is replaced, once, and checkout and the portal work
again: billing's service on a real PostgreSQL, the official `stripe` SDK against the Stripe
emulator over HTTP (the customer deleted through the SDK, as in the dashboard)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import stripe
from pydantic import SecretStr

from tests.support.schemas import SchemaDb
from visiona.billing.config import BillingSettings
from visiona.billing.domain.catalog import Catalog
from visiona.billing.providers.stripe import StripeSdk
from visiona.billing.repository.account import AccountRepository
from visiona.billing.service import BillingService
from visiona.billing.service.stripe_events import StripeEventApplier
from visiona.emulators._server import running
from visiona.emulators.stripe import DEFAULT_API_KEY, Settings, create_app
from visiona.kit.events import StripeEventReceivedV1

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

CATALOG = Catalog.load()


@pytest.fixture(scope="module")
def emulator_url() -> Iterator[str]:
    with running(create_app(Settings(prices=CATALOG.stripe_prices()))) as url:
        yield url


@pytest.fixture
def sdk(emulator_url: str) -> stripe.StripeClient:
    return stripe.StripeClient(
        DEFAULT_API_KEY,
        base_addresses={"api": emulator_url},
        http_client=stripe.HTTPXClient(allow_sync_methods=True),
    )


@pytest.fixture
async def service(billing_db: SchemaDb, emulator_url: str) -> AsyncIterator[BillingService]:
    settings = BillingSettings(
        stripe_api_key=SecretStr(DEFAULT_API_KEY),
        stripe_api_base=emulator_url,
        stripe_max_network_retries=0,
    )
    db = billing_db.db(pool_size=3, max_overflow=3)
    try:
        yield BillingService(db, CATALOG, StripeSdk(settings), settings)
    finally:
        await db.dispose()


def user() -> str:
    return f"user_{uuid.uuid4().hex[:12]}"


def account(billing_db: SchemaDb, user_id: str) -> tuple[str, list[str]]:
    ((customer, replaced),) = billing_db.sql(
        "SELECT stripe_customer_id, replaced_stripe_customer_ids FROM accounts WHERE user_id = %s",
        user_id,
    )
    return customer, list(replaced)


@pytest.fixture
async def lost_customer(
    service: BillingService, billing_db: SchemaDb, sdk: stripe.StripeClient
) -> tuple[str, str]:
    """A user whose first customer was deleted at Stripe, as in the dashboard: (the user,
    that customer)."""
    owner = user()
    await service.create_checkout(owner, "pack", "starter")
    first, _ = account(billing_db, owner)
    sdk.v1.customers.delete(first)
    return owner, first


def live_customers_of(sdk: stripe.StripeClient, user_id: str) -> list[str]:
    listed = sdk.v1.customers.list(params={"limit": 100}).auto_paging_iter()
    return [c.id for c in listed if c.to_dict()["metadata"].get("user_id") == user_id]


async def test_a_deleted_customer_is_replaced_once_by_concurrent_requests(
    service: BillingService,
    billing_db: SchemaDb,
    sdk: stripe.StripeClient,
    lost_customer: tuple[str, str],
) -> None:
    owner, first = lost_customer

    # Checkouts and portals at once: each finds the customer missing, all end with one.
    answers = await asyncio.gather(
        *(service.create_checkout(owner, "pack", "starter") for _ in range(3)),
        *(service.create_portal(owner) for _ in range(3)),
    )
    assert all(answers)
    now, replaced = account(billing_db, owner)
    assert now != first and replaced == [first]
    assert live_customers_of(sdk, owner) == [now]
    sessions = [sdk.v1.checkout.sessions.retrieve(s.id) for s, _ in answers[:3]]  # type: ignore[union-attr]
    assert {s.customer for s in sessions} == {now}

    # Found missing again later (deleted again): replaced again, the history kept.
    sdk.v1.customers.delete(now)
    await service.create_portal(owner)
    latest, replaced = account(billing_db, owner)
    assert latest not in (first, now) and replaced == [first, now]


async def test_a_customer_that_never_existed_here_is_replaced(
    service: BillingService, billing_db: SchemaDb, sdk: stripe.StripeClient
) -> None:
    """A restored backup, or the other mode's keys: Stripe answers 404, not a deleted stub."""
    owner = user()
    billing_db.sql(
        "INSERT INTO accounts (user_id, stripe_customer_id) VALUES (%s, 'cus_otherworld')", owner
    )
    url = await service.create_portal(owner)
    assert url.startswith("http")
    now, replaced = account(billing_db, owner)
    assert replaced == ["cus_otherworld"] and live_customers_of(sdk, owner) == [now]


async def test_a_plan_stripe_ended_with_its_customer_no_longer_blocks_a_new_one(
    service: BillingService, billing_db: SchemaDb, sdk: stripe.StripeClient
) -> None:
    owner = user()
    session, _ = await service.create_checkout(owner, "plan", "creator")
    pay(session.url)
    customer, _ = account(billing_db, owner)
    (subscription,) = sdk.v1.subscriptions.list(params={"customer": customer}).data
    # Billing knew the plan (its webhooks were applied), and one it never had at Stripe.
    billing_db.sql(
        "INSERT INTO subscriptions (id, user_id, plan_id, status) VALUES "
        "(%s, %s, 'creator', 'active'), (%s, %s, 'creator', 'active')",
        subscription.id,
        owner,
        "sub_restoredbackup",
        owner,
    )
    sdk.v1.customers.delete(customer)  # Stripe cancels its subscriptions at once

    await service.create_portal(owner)
    assert billing_db.sql(
        "SELECT id, status FROM subscriptions WHERE user_id = %s ORDER BY id", owner
    ) == sorted([(subscription.id, "canceled"), ("sub_restoredbackup", "canceled")])
    assert billing_db.sql(
        "SELECT count(*) FROM outbox WHERE routing_key = 'billing.plan.changed.v1' "
        "AND payload->>'user_id' = %s",
        owner,
    ) == [(2,)]
    new_plan, replayed = await service.create_checkout(owner, "plan", "creator")
    assert not replayed and new_plan.id != session.id

    # The deletion's own webhook, applied after the replacement, still finds the user.
    deleted = next(
        e
        for e in sdk.v1.events.list(params={"type": "customer.subscription.deleted"}).data
        if e.data.object.id == subscription.id  # type: ignore[attr-defined]
    )
    outcome = await apply(billing_db, service, deleted.to_dict())
    assert outcome == "subscription_canceled"


async def test_an_erasure_forgets_the_events_of_replaced_customers(
    service: BillingService, billing_db: SchemaDb, lost_customer: tuple[str, str]
) -> None:
    owner, first = lost_customer
    await service.create_portal(owner)
    event_id = f"evt_{uuid.uuid4().hex}"
    billing_db.sql(
        "INSERT INTO stripe_events (id, type, payload, processed_at, outcome) "
        "VALUES (%s, 'charge.refunded', %s, now(), 'clawed_back')",
        event_id,
        json.dumps({"id": event_id, "data": {"object": {"customer": first}}}),
    )
    async with service.db.uow(owner) as uow:
        await AccountRepository(uow.session).purge(owner, timedelta(days=1))
        await uow.commit()
    assert billing_db.sql("SELECT count(*) FROM stripe_events WHERE id = %s", event_id) == [(0,)]


def pay(url: str) -> None:
    """What the buyer's browser does on Stripe's hosted page."""
    response = httpx.post(
        f"{url}/pay", json={"outcome": "paid"}, headers={"Accept": "application/json"}
    )
    assert response.status_code == 200, response.text


async def apply(billing_db: SchemaDb, service: BillingService, event: dict[str, Any]) -> str:
    billing_db.sql(
        "INSERT INTO stripe_events (id, type, payload) VALUES (%s, %s, %s)",
        event["id"],
        event["type"],
        json.dumps(event, default=str),
    )
    applier = StripeEventApplier(CATALOG, service.stripe)
    async with service.db.uow(system=True) as uow:
        await applier.apply(
            StripeEventReceivedV1(stripe_event_id=event["id"], type=event["type"]), uow
        )
        await uow.commit()
    ((outcome,),) = billing_db.sql("SELECT outcome FROM stripe_events WHERE id = %s", event["id"])
    return str(outcome)
