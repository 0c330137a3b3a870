"""A user's erasure in billing's schema, on a real PostgreSQL: everything of the user goes, the
payments stay anonymised, the ledger stays append-only for everything else."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import psycopg
import pytest
import sqlalchemy as sa

from tests.support.rows import rows_naming
from tests.support.schemas import SchemaDb
from visiona.billing.account import AccountData, ErasureJobs
from visiona.billing.config import BillingSettings
from visiona.billing.repository.account import AccountRepository
from visiona.billing.repository.ledger import Ledger
from visiona.kit.errors import NotFound, Unavailable
from visiona.kit.events import ErasureRequestedV1


def user() -> str:
    return f"user_{uuid.uuid4().hex[:12]}"


async def paying_user(billing_db: SchemaDb, user_id: str, customer: str) -> None:
    """A user who bought a pack (with its Checkout Session and Stripe event), holds credits
    for a job and got a refund."""
    session = f"cs_test_{uuid.uuid4().hex}"
    intent, charge = f"pi_{uuid.uuid4().hex[:24]}", f"ch_{uuid.uuid4().hex[:24]}"
    async with billing_db.opened() as db, db.uow(user_id) as uow:
        await uow.session.execute(
            sa.text(
                "INSERT INTO checkout_sessions (id, user_id, kind, item_id, credits, amount, "
                "currency, status, completed_at) VALUES (:id, :u, 'pack', 'starter', 200, "
                "900, 'usd', 'paid', now())"
            ),
            {"id": session, "u": user_id},
        )
        ledger = Ledger(uow.session)
        await ledger.post(
            user_id=user_id,
            key=f"purchase:{session}",
            kind="purchase",
            delta=200,
            reference=session,
            payment_intent=intent,
            metadata={"pack": "starter"},
        )
        await ledger.place_hold(
            user_id=user_id,
            key=f"generation:{uuid.uuid4()}",
            job_kind="generation",
            job_id=str(uuid.uuid4()),
            amount=8,
            units=2,
            ttl=timedelta(minutes=5),
        )
        await ledger.claw_back(
            user_id=user_id,
            key=f"clawback:{charge}:450",
            amount=100,
            reference=charge,
            payment_intent=intent,
            metadata={"amount_refunded": 450, "amount": 900, "currency": "usd"},
        )
        await uow.commit()
    billing_db.sql(
        "UPDATE accounts SET stripe_customer_id = %s WHERE user_id = %s", customer, user_id
    )
    event = {
        "id": f"evt_{uuid.uuid4().hex}",
        "object": "event",
        "type": "checkout.session.completed",
        "data": {
            "object": {
                "id": session,
                "customer": customer,
                "client_reference_id": user_id,
                "customer_details": {"email": f"{user_id}@example.com"},
            }
        },
    }
    billing_db.sql(
        "INSERT INTO stripe_events (id, type, payload, processed_at, outcome) "
        "VALUES (%s, %s, %s, now(), 'credited')",
        event["id"],
        event["type"],
        json.dumps(event),
    )


async def test_a_purge_deletes_every_row_of_the_user_and_keeps_payments_anonymised(
    billing_db: SchemaDb,
) -> None:
    erased, kept = user(), user()
    erased_customer, kept_customer = f"cus_{uuid.uuid4().hex[:14]}", f"cus_{uuid.uuid4().hex[:14]}"
    await paying_user(billing_db, erased, erased_customer)
    await paying_user(billing_db, kept, kept_customer)
    before = billing_db.sql("SELECT count(*) FROM retained_payments")[0][0]

    async with billing_db.opened() as db:
        async with db.uow(erased) as uow:
            purge = await AccountRepository(uow.session).purge(erased, timedelta(days=30))
            await uow.commit()
        async with db.uow(erased) as uow:
            again = await AccountRepository(uow.session).purge(erased, timedelta(days=30))
            await uow.commit()

    # account, 3 ledger entries (purchase, hold, clawback), hold, session, Stripe event
    assert (purge.removed, purge.retained, purge.stripe_customer_id) == (7, 2, erased_customer)
    assert (again.removed, again.retained, again.stripe_customer_id) == (0, 0, None)
    assert rows_naming(billing_db.sql, "billing", erased, erased_customer) == {}
    retained = billing_db.sql(
        "SELECT kind, amount, currency, item_id, credits, retain_until - retained_at "
        "FROM retained_payments ORDER BY kind OFFSET %s",
        before,
    )
    assert retained == [
        ("pack_purchase", 900, "usd", "starter", 200, timedelta(days=30)),
        ("refund", 450, "usd", None, -100, timedelta(days=30)),
    ]
    refs = billing_db.sql("SELECT DISTINCT account_ref FROM retained_payments OFFSET %s", before)
    assert len(refs) == 1
    # The other user is untouched.
    assert billing_db.sql(
        "SELECT balance, held, stripe_customer_id FROM accounts WHERE user_id = %s", kept
    ) == [(100, 8, kept_customer)]
    assert billing_db.sql("SELECT count(*) FROM ledger_entries WHERE user_id = %s", kept) == [(3,)]
    assert rows_naming(billing_db.sql, "billing", kept_customer) == {
        "accounts": 1,
        "stripe_events": 1,
    }


async def test_the_ledger_is_erased_only_for_the_user_the_transaction_acts_as(
    billing_db: SchemaDb,
) -> None:
    victim, attacker = user(), user()
    await paying_user(billing_db, victim, f"cus_{uuid.uuid4().hex[:14]}")
    async with billing_db.opened() as db:
        for as_user in (attacker, None):
            async with db.uow(as_user) as uow:
                with pytest.raises(Exception, match="acting as its user"):
                    await uow.session.execute(
                        sa.text("SELECT erase_ledger_entries(:u)"),
                        {"u": victim},
                    )
    assert billing_db.sql("SELECT count(*) FROM ledger_entries WHERE user_id = %s", victim) == [
        (3,)
    ]
    # The trigger still refuses a DELETE by anyone else, with or without the erasure flag.
    for url in (billing_db.admin_url, billing_db.app_url):
        with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute("SET search_path TO billing")
            conn.execute(
                "SELECT set_config('billing.erasing_user', %s, false), "
                "set_config('app.user_id', %s, false)",
                (victim, victim),
            )
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("DELETE FROM ledger_entries WHERE user_id = %s", (victim,))


class FlakyStripe:
    """The Stripe port's customer deletion: unavailable ``failures`` times, then 404 once
    deleted (as the real API answers a second DELETE)."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.deleted: list[str] = []

    async def delete_customer(self, customer_id: str) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise Unavailable("payment provider unavailable", code="stripe_unavailable")
        if customer_id in self.deleted:
            raise NotFound("no such Stripe object", code="stripe_object_missing")
        self.deleted.append(customer_id)


async def test_a_round_waits_for_stripe_then_answers_once_and_leaves_nothing(
    billing_db: SchemaDb,
) -> None:
    erased, customer = user(), f"cus_{uuid.uuid4().hex[:14]}"
    await paying_user(billing_db, erased, customer)
    stripe = FlakyStripe(failures=1)
    settings = BillingSettings(erasure_poll_interval_s=0.05, erasure_lease_s=5)
    db = billing_db.db()
    jobs = ErasureJobs(db, stripe, settings)  # type: ignore[arg-type]
    deletion = uuid.uuid4()
    request = ErasureRequestedV1(user_id=erased, deletion_id=deletion, round=1)
    try:
        async with db.uow(erased) as uow:
            await AccountData(None, jobs, settings).erasure_requested(request, uow)
            await uow.commit()
        assert billing_db.sql("SELECT work, work_attempts FROM erasures") == [
            ("delete_customer", 0)
        ]
        assert await jobs.run_once() == 1  # Stripe unavailable: retried later
        ((attempts, lease, due),) = billing_db.sql(
            "SELECT work_attempts, lease_until, work_after > now() FROM erasures"
        )
        assert (attempts, lease, due, stripe.deleted) == (1, None, True, [])
        assert answers(billing_db, deletion) == []
        billing_db.sql("UPDATE erasures SET work_after = now()")
        assert await jobs.run_once() == 1
    finally:
        await db.dispose()
    assert stripe.deleted == [customer]
    assert billing_db.sql("SELECT count(*) FROM erasures") == [(0,)]
    # account, 3 ledger entries, hold, session, Stripe event, and the customer at Stripe
    assert answers(billing_db, deletion) == [{"round": 1, "removed": 8}]
    assert rows_naming(billing_db.sql, "billing", erased, customer) == {}


def answers(billing_db: SchemaDb, deletion_id: uuid.UUID) -> list[dict[str, object]]:
    return [
        {"round": p["round"], "removed": p["removed"]}  # type: ignore[index]
        for (p,) in billing_db.sql(
            "SELECT payload FROM outbox WHERE routing_key = 'billing.account.purged.v1' "
            "AND payload->>'deletion_id' = %s",
            str(deletion_id),
        )
    ]
