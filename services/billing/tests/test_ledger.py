"""The credit ledger on a real PostgreSQL: exact, idempotent, never negative, append-only."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.schemas import SchemaDb
from visiona.billing.domain.catalog import Catalog
from visiona.billing.jobs import expire_due_holds
from visiona.billing.repository.ledger import Ledger
from visiona.kit.db import Database


@pytest.fixture
async def db(billing_db: SchemaDb) -> AsyncIterator[Database]:
    database = billing_db.db()
    yield database
    await database.dispose()


def user() -> str:
    return f"user_{uuid.uuid4().hex[:12]}"


async def grant(db, user_id: str, credits: int, key: str | None = None) -> None:  # type: ignore[no-untyped-def]
    async with db.uow(user_id) as uow:
        result = await Ledger(uow.session).post(
            user_id=user_id, key=key or f"purchase:{uuid.uuid4()}", kind="purchase", delta=credits
        )
        await uow.commit()
    assert result.status in ("applied", "duplicate")


async def hold(db, user_id: str, key: str, amount: int, units: int = 1, ttl_s: float = 600):  # type: ignore[no-untyped-def]
    async with db.uow(user_id) as uow:
        result = await Ledger(uow.session).place_hold(
            user_id=user_id,
            key=key,
            job_kind="generation",
            job_id=str(uuid.uuid5(uuid.NAMESPACE_URL, key)),
            amount=amount,
            units=units,
            ttl=timedelta(seconds=ttl_s),
        )
        await uow.commit()
    return result


async def settle(db, user_id: str, key: str, delivered: int, outcome: str = "succeeded"):  # type: ignore[no-untyped-def]
    async with db.uow(user_id) as uow:
        result = await Ledger(uow.session).settle_hold(
            user_id=user_id, key=key, delivered=delivered, outcome=outcome
        )
        await uow.commit()
    return result


def invariant(billing_db: SchemaDb, user_id: str) -> tuple[int, int]:
    """The account equals the sum of its ledger, and the open holds equal what is held."""
    ((balance, held),) = billing_db.sql(
        "SELECT COALESCE(max(balance), 0), COALESCE(max(held), 0) FROM accounts WHERE user_id = %s",
        user_id,
    )
    ((sum_balance, sum_held),) = billing_db.sql(
        "SELECT COALESCE(sum(delta_balance), 0), COALESCE(sum(delta_held), 0) "
        "FROM ledger_entries WHERE user_id = %s",
        user_id,
    )
    ((open_holds,),) = billing_db.sql(
        "SELECT COALESCE(sum(amount), 0) FROM holds WHERE user_id = %s AND status = 'open'",
        user_id,
    )
    assert (balance, held) == (sum_balance, sum_held) and held == open_holds
    assert 0 <= held <= balance  # type: ignore[operator]
    return int(balance), int(held)  # type: ignore[call-overload]


async def test_a_purchase_is_credited_once_per_key(billing_db: SchemaDb, db: Database) -> None:
    u = user()
    await asyncio.gather(*(grant(db, u, 200, key="purchase:cs_same") for _ in range(16)))
    assert invariant(billing_db, u) == (200, 0)
    assert billing_db.sql("SELECT count(*) FROM ledger_entries WHERE user_id = %s", u) == [(1,)]


async def test_64_concurrent_holds_with_one_key_make_one_hold(billing_db: SchemaDb) -> None:
    # Six transactions at a time race for the key; the other calls wait for a connection
    # (tests/support/budget.py), as the service's own calls do when its pool is busy.
    db, u = billing_db.db(pool_size=6, max_overflow=0), user()
    try:
        await grant(db, u, 1000)
        results = await asyncio.gather(*(hold(db, u, "generation:same", 40) for _ in range(64)))
        assert {r.hold_id for r in results} == {results[0].hold_id}
        assert sum(r.created for r in results) == 1
        assert invariant(billing_db, u) == (1000, 40)
    finally:
        await db.dispose()


async def test_a_hold_beyond_available_credits_is_rejected_and_answers_the_same_again(
    billing_db: SchemaDb, db: Database
) -> None:
    u = user()
    await grant(db, u, 50)
    first = await hold(db, u, "generation:big", 80)
    again = await hold(db, u, "generation:big", 80)
    assert (first.status, again.status) == ("rejected", "rejected")
    assert first.balance.available == 50
    assert invariant(billing_db, u) == (50, 0)
    nobody = await hold(db, user(), "generation:nobody", 1)
    assert nobody.status == "rejected"


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    balance=st.integers(min_value=0, max_value=500),
    amounts=st.lists(st.integers(min_value=1, max_value=120), min_size=1, max_size=24),
)
def test_concurrent_holds_never_take_available_credits_below_zero(
    billing_db: SchemaDb, balance: int, amounts: list[int]
) -> None:
    async def scenario() -> None:
        db, u = billing_db.db(pool_size=6, max_overflow=0), user()
        try:
            if balance:
                await grant(db, u, balance)
            results = await asyncio.gather(
                *(hold(db, u, f"generation:{i}", amount) for i, amount in enumerate(amounts))
            )
            placed = sum(r.amount for r in results if r.status == "open")
            assert placed <= balance
            # Every rejection was a real shortage at its moment: with the others it holds,
            # the rejected amount did not fit.
            for r in results:
                if r.status == "rejected":
                    assert r.amount > r.balance.available
            assert invariant(billing_db, u) == (balance, placed)
        finally:
            await db.dispose()

    asyncio.run(scenario())


async def test_partial_capture_pays_for_what_was_delivered_and_releases_the_rest(
    billing_db: SchemaDb, db: Database
) -> None:
    u = user()
    await grant(db, u, 100)
    await hold(db, u, "generation:g1", 40, units=4)
    result = await settle(db, u, "generation:g1", delivered=3)
    assert (result.captured, result.released, result.changed) == (30, 10, True)
    assert invariant(billing_db, u) == (70, 0)
    again = await settle(db, u, "generation:g1", delivered=3)
    assert not again.changed
    assert invariant(billing_db, u) == (70, 0)
    kinds = billing_db.sql(
        "SELECT kind, delta_balance, delta_held FROM ledger_entries WHERE user_id = %s ORDER BY id",
        u,
    )
    assert kinds == [("purchase", 100, 0), ("hold", 0, 40), ("capture", -30, -30),
                     ("release", 0, -10)]  # fmt: skip


async def test_a_failed_job_releases_everything(billing_db: SchemaDb, db: Database) -> None:
    u = user()
    await grant(db, u, 200)
    await hold(db, u, "training:t1", 150)
    result = await settle(db, u, "training:t1", delivered=0, outcome="failed")
    assert (result.captured, result.released) == (0, 150)
    assert invariant(billing_db, u) == (200, 0)


async def test_an_expired_hold_releases_itself_and_tells_the_job(
    billing_db: SchemaDb, db: Database
) -> None:
    u = user()
    await grant(db, u, 100)
    placed = await hold(db, u, "generation:slow", 60, units=2, ttl_s=0)
    assert placed.status == "open"
    assert await expire_due_holds(db, 100) >= 1
    assert invariant(billing_db, u) == (100, 0)
    assert billing_db.sql("SELECT status FROM holds WHERE id = %s", placed.hold_id) == [
        ("expired",)
    ]
    keys = [r[0] for r in billing_db.sql("SELECT routing_key FROM outbox")]
    assert "billing.hold.expired.v1" in keys
    # The job delivered one image after all: it is still paid for, from available credits.
    late = await settle(db, u, "generation:slow", delivered=1)
    assert (late.status, late.captured) == ("settled", 30)
    assert invariant(billing_db, u) == (70, 0)
    assert not (await settle(db, u, "generation:slow", delivered=1)).changed
    assert await expire_due_holds(db, 100) == 0


async def test_a_clawback_never_goes_below_zero_and_records_the_shortfall(
    billing_db: SchemaDb, db: Database
) -> None:
    u = user()
    await grant(db, u, 100)
    await hold(db, u, "generation:running", 30)
    async with db.uow(u) as uow:
        result = await Ledger(uow.session).claw_back(
            user_id=u, key="clawback:ch_1:900", amount=90, reference="ch_1", payment_intent=None
        )
        await uow.commit()
    # 70 available (30 back a running job): 70 taken, 20 recorded as uncollected.
    assert (result.taken, result.uncollected) == (70, 20)
    assert invariant(billing_db, u) == (30, 30)
    assert billing_db.sql(
        "SELECT metadata->>'uncollected' FROM ledger_entries WHERE kind = 'refund_clawback' "
        "AND user_id = %s",
        u,
    ) == [("20",)]


async def test_an_adjustment_cannot_take_available_credits_below_zero(
    billing_db: SchemaDb, db: Database
) -> None:
    u = user()
    await grant(db, u, 10)
    async with db.uow(u) as uow:
        result = await Ledger(uow.session).post(
            user_id=u, key="adjustment:x", kind="adjustment", delta=-11, actor="ops", reason="t"
        )
    assert result.status == "insufficient"
    assert invariant(billing_db, u) == (10, 0)


def test_the_database_itself_refuses_negative_balances_and_ledger_edits(
    billing_db: SchemaDb,
) -> None:
    u = user()
    billing_db.sql("INSERT INTO accounts (user_id, balance) VALUES (%s, 5)", u)
    with pytest.raises(psycopg.errors.CheckViolation):
        billing_db.sql("UPDATE accounts SET balance = -1 WHERE user_id = %s", u)
    with pytest.raises(psycopg.errors.CheckViolation):
        billing_db.sql("UPDATE accounts SET held = 6 WHERE user_id = %s", u)
    billing_db.sql(
        "INSERT INTO ledger_entries (user_id, kind, delta_balance, delta_held, balance_after, "
        "held_after, idempotency_key) VALUES (%s, 'adjustment', 5, 0, 5, 0, %s)",
        u,
        f"k-{u}",
    )
    # Even a superuser cannot rewrite history (trigger)...
    for statement in (
        "UPDATE ledger_entries SET delta_balance = 500 WHERE user_id = %s",
        "DELETE FROM ledger_entries WHERE user_id = %s",
        "TRUNCATE ledger_entries",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            billing_db.sql(statement, *([u] if "%s" in statement else []))
    # ...and the service's role has no UPDATE/DELETE privilege at all.
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        billing_db.sql("DELETE FROM ledger_entries", as_role="app")


async def test_one_user_never_sees_another_users_ledger(billing_db: SchemaDb, db: Database) -> None:
    a, b = user(), user()
    await grant(db, a, 100)
    async with db.uow(b) as uow:
        assert await Ledger(uow.session).page(a, before_id=None, limit=10) == []
        assert (await Ledger(uow.session).balance(a)).balance == 0
    async with db.uow(a) as uow:
        assert len(await Ledger(uow.session).page(a, before_id=None, limit=10)) == 1


def test_the_shipped_catalogue_is_valid() -> None:
    catalog = Catalog.load()
    assert catalog.pack("starter") and catalog.plan("creator")
    assert catalog.plan_by_price(catalog.plans[0].stripe_price) == catalog.plans[0]
    assert {p["id"] for p in catalog.stripe_prices()} == {
        *(p.stripe_price for p in catalog.packs),
        *(p.stripe_price for p in catalog.plans),
    }


async def test_stripe_events_left_open_are_staged_again_once_they_are_old(
    billing_db: SchemaDb, db: Database
) -> None:
    from visiona.billing.jobs import restage_open_events

    event_id = f"evt_{uuid.uuid4().hex}"
    billing_db.sql(
        "INSERT INTO stripe_events (id, type, payload, staged_at) VALUES "
        "(%s, 'invoice.paid', '{}', now() - interval '1 hour')",
        event_id,
    )
    assert await restage_open_events(db, older_than_s=600) == 1
    staged = billing_db.sql(
        "SELECT count(*) FROM outbox WHERE routing_key = 'billing.stripe_event.received.v1' "
        "AND payload->>'stripe_event_id' = %s",
        event_id,
    )
    assert staged == [(1,)]
    assert await restage_open_events(db, older_than_s=600) == 0  # just staged
    billing_db.sql("UPDATE stripe_events SET processed_at = now() WHERE id = %s", event_id)
    assert await restage_open_events(db, older_than_s=0) == 0  # closed events stay closed
