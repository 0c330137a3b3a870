"""Accounts: the user's Stripe customer (and those it replaced), and the user's rows in bulk
for an erasure or an export. The transaction acts as that user (RLS) unless said otherwise.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from visiona.kit.repository import Repository

# Every payment of the user billing knows of, as accounting keeps it: what (the pack or plan),
# when, how much, and Stripe's id of it. Purchases are priced by their Checkout Session;
# plan invoices and refunds by what Stripe said when they were applied (ledger metadata).
# A refund's amount is what that clawback added to the charge's refunded total.
_PAYMENTS = """
SELECT
    CASE e.kind WHEN 'purchase' THEN 'pack_purchase' WHEN 'plan_grant' THEN 'plan_invoice'
        ELSE 'refund' END AS kind,
    e.reference AS stripe_reference,
    e.payment_intent,
    CASE e.kind
        WHEN 'purchase' THEN cs.amount
        WHEN 'plan_grant' THEN (e.metadata->>'amount_paid')::bigint
        ELSE (e.metadata->>'amount_refunded')::bigint - COALESCE(lag(
            (e.metadata->>'amount_refunded')::bigint) OVER (
            PARTITION BY e.kind, e.reference ORDER BY e.id), 0)
    END AS amount,
    CASE e.kind WHEN 'purchase' THEN cs.currency ELSE e.metadata->>'currency' END AS currency,
    COALESCE(cs.item_id, e.metadata->>'pack', e.metadata->>'plan') AS item_id,
    e.delta_balance AS credits,
    e.created_at AS occurred_at
FROM ledger_entries e
LEFT JOIN checkout_sessions cs ON e.kind = 'purchase' AND cs.id = e.reference
WHERE e.user_id = :user AND e.kind IN ('purchase', 'plan_grant', 'refund_clawback')
"""

# Tables whose rows are the user's (row-level security on user_id): deleted in this order by
# an erasure. ledger_entries goes through erase_ledger_entries (append-only otherwise), and
# accounts (the Stripe customer mapping) last.
_USER_TABLES = ("usage_records", "holds", "checkout_sessions", "subscriptions")

# Stored Stripe events that name the user or one of their customers anywhere in the payload.
# The user id is matched as a whole JSON string (so user_a does not match user_ab); Stripe ids
# are fixed-length and unique, so a customer id is matched anywhere (URLs included).
_STRIPE_EVENTS_OF = (
    "DELETE FROM stripe_events WHERE strpos(payload::text, :user_json) > 0 "
    "OR EXISTS (SELECT 1 FROM unnest(CAST(:customers AS text[])) AS c "
    "WHERE strpos(payload::text, c) > 0)"
)


@dataclass(frozen=True)
class Purge:
    removed: int
    retained: int
    stripe_customer_id: str | None


class AccountRepository(Repository):
    """A user's rows in bulk; the transaction acts as that user (RLS)."""

    async def stripe_customer(self, user_id: str) -> str | None:
        customer = await self._scalar(
            "SELECT stripe_customer_id FROM accounts WHERE user_id = :user", {"user": user_id}
        )
        return str(customer) if customer else None

    async def store_customer(self, user_id: str, customer: str) -> str:
        """Record the user's first customer; the one already recorded wins (a twin's)."""
        stored = await self._scalar_one(
            "INSERT INTO accounts AS a (user_id, stripe_customer_id) VALUES (:u, :c) "
            "ON CONFLICT (user_id) DO UPDATE SET stripe_customer_id = "
            "COALESCE(a.stripe_customer_id, EXCLUDED.stripe_customer_id), "
            "updated_at = now() RETURNING stripe_customer_id",
            {"u": user_id, "c": customer},
        )
        return str(stored)

    async def replace_customer(self, user_id: str, missing: str, new: str) -> bool:
        """Put ``new`` in place of ``missing`` (kept among the replaced ones), compared and set:
        False when the stored customer is no longer ``missing``."""
        replaced = await self._scalar(
            "UPDATE accounts SET stripe_customer_id = :new, replaced_stripe_customer_ids = "
            "array_append(replaced_stripe_customer_ids, :old), updated_at = now() "
            "WHERE user_id = :u AND stripe_customer_id = :old RETURNING stripe_customer_id",
            {"u": user_id, "new": new, "old": missing},
        )
        return replaced is not None

    async def user_of_customer(self, customer: str) -> str | None:
        """The user whose customer it is, or was before it was replaced (its late events are
        theirs too). Reads across users: the transaction must be the system principal."""
        user = await self._scalar(
            "SELECT user_id FROM accounts WHERE stripe_customer_id = :c UNION ALL "
            "SELECT user_id FROM accounts WHERE replaced_stripe_customer_ids @> "
            "ARRAY[CAST(:c AS text)] LIMIT 1",
            {"c": customer},
        )
        return str(user) if user else None

    async def payments(self, user_id: str) -> list[dict[str, Any]]:
        rows = await self._execute(
            _PAYMENTS + " ORDER BY occurred_at, stripe_reference", {"user": user_id}
        )
        return [dict(row._mapping) for row in rows]

    async def records(self, table: str, user_id: str, order_by: str) -> list[dict[str, Any]]:
        """Every row of the user in one of billing's user-owned tables (for an export)."""
        if table not in (*_USER_TABLES, "accounts", "ledger_entries"):
            raise ValueError(f"{table} is not a user-owned table")
        rows = await self._execute(
            f"SELECT * FROM {table} WHERE user_id = :user ORDER BY {order_by}", {"user": user_id}
        )
        return [dict(row._mapping) for row in rows]

    async def purge(self, user_id: str, retain_for: timedelta) -> Purge:
        """Keep the user's payments anonymised (``retained_payments``), then delete every row
        that names the user or their Stripe customer. One transaction: all or nothing."""
        customer = await self.stripe_customer(user_id)
        mine = {"user": user_id}
        replaced = (
            await self._scalar(
                "SELECT replaced_stripe_customer_ids FROM accounts WHERE user_id = :user", mine
            )
            or []
        )
        retained = await self._affected(
            "INSERT INTO retained_payments (account_ref, kind, stripe_reference, "
            "payment_intent, amount, currency, item_id, credits, occurred_at, retain_until) "
            "SELECT :ref, p.kind, p.stripe_reference, p.payment_intent, p.amount, "
            "p.currency, p.item_id, p.credits, p.occurred_at, now() + :keep "
            f"FROM ({_PAYMENTS}) AS p",
            {"ref": uuid.uuid4(), "keep": retain_for, **mine},
        )
        removed = 0
        for table in _USER_TABLES:
            removed += await self._affected(f"DELETE FROM {table} WHERE user_id = :user", mine)
        removed += int(await self._scalar_one("SELECT erase_ledger_entries(:user)", mine))
        removed += await self._affected("DELETE FROM accounts WHERE user_id = :user", mine)
        removed += await self.purge_stripe_events(user_id, customer, *replaced)
        return Purge(removed, retained, customer)

    async def purge_stripe_events(self, user_id: str, *customers: str | None) -> int:
        return await self._affected(
            _STRIPE_EVENTS_OF,
            {
                "user_json": json.dumps(user_id, ensure_ascii=False),
                "customers": [c for c in customers if c],
            },
        )


async def delete_expired_retained_payments(session: AsyncConnection, limit: int = 1000) -> int:
    """Records past their statutory period go (not user-owned: any transaction may)."""
    result = await session.execute(
        sa.text(
            "DELETE FROM retained_payments WHERE id IN (SELECT id FROM retained_payments "
            "WHERE retain_until <= now() ORDER BY retain_until LIMIT :limit)"
        ),
        {"limit": limit},
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
