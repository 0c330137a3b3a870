"""The credit ledger's SQL: every movement is one call to a database function (0002_ledger).

The functions are the only writers of ``accounts`` balances, ``holds`` and ``ledger_entries``,
and this module the only caller of the functions; the rules they enforce are stated in
``domain/ledger.py`` and ``domain/hold.py``. Each is one round trip and idempotent by its key.
Row-level security applies (they run as the caller), so the transaction must act as the user
whose credits move.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from psycopg.rows import namedtuple_row

from visiona.billing.domain.hold import DueHold, HoldResult, SettleResult
from visiona.billing.domain.ledger import Balance, ClawbackResult, Entry, PostResult
from visiona.kit.db import driver_of
from visiona.kit.repository import Repository

# Each call is one statement that first makes its user the transaction's RLS user (the
# function's first argument depends on it, so it runs first) and then calls the function: a
# unit of work opened without a user still pays one round trip per movement. They run on the
# unit of work's psycopg connection (same transaction), the hot path of every job.
_AS_USER = "FROM (SELECT set_config('app.user_id', %(user_id)s, true) AS u) AS me, LATERAL "
_POST_ENTRY = (
    "SELECT f.status, f.balance, f.held, f.entry_id " + _AS_USER + "post_entry("
    "me.u, %(key)s, %(kind)s, %(delta)s, %(reference)s, %(payment_intent)s, %(actor)s, "
    "%(reason)s, %(metadata)s::jsonb) AS f"
)
_PLACE_HOLD = (
    "SELECT f.hold_id, f.status, f.amount, f.balance, f.held, f.expires_at, f.created "
    + _AS_USER
    + "place_hold(me.u, %(key)s, %(job_kind)s, %(job_id)s, %(amount)s, %(units)s, "
    "make_interval(secs => %(ttl_s)s)) AS f"
)
_SETTLE_HOLD = (
    "SELECT f.status, f.captured, f.released, f.balance, f.held, f.changed "
    + _AS_USER
    + "settle_hold(me.u, %(key)s, %(delivered)s, %(outcome)s, %(final)s) AS f"
)
_CLAW_BACK = (
    "SELECT f.status, f.taken, f.uncollected, f.balance, f.held " + _AS_USER + "claw_back("
    "me.u, %(key)s, %(amount)s, %(reference)s, %(payment_intent)s, %(metadata)s::jsonb) AS f"
)
_BALANCE = sa.text("SELECT balance, held FROM accounts WHERE user_id = :user_id")


def _json(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


class Ledger(Repository):
    """One transaction's view of the ledger (bind to a unit of work's session)."""

    async def _call(self, sql: str, params: dict[str, Any], *, optional: bool = False) -> Any:
        driver = await driver_of(self.session)
        async with driver.cursor(row_factory=namedtuple_row) as cur:
            await cur.execute(sql, params)
            row = await cur.fetchone()
        if row is None and not optional:
            raise RuntimeError("a ledger function returned no row")
        return row

    async def post(
        self,
        *,
        user_id: str,
        key: str,
        kind: str,
        delta: int,
        reference: str | None = None,
        payment_intent: str | None = None,
        actor: str | None = None,
        reason: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> PostResult:
        row = await self._call(
            _POST_ENTRY,
            {
                "user_id": user_id,
                "key": key,
                "kind": kind,
                "delta": delta,
                "reference": reference,
                "payment_intent": payment_intent,
                "actor": actor,
                "reason": reason,
                "metadata": _json(metadata),
            },
        )
        return PostResult(row.status, Balance(int(row.balance or 0), int(row.held or 0)))

    async def place_hold(
        self,
        *,
        user_id: str,
        key: str,
        job_kind: str,
        job_id: str,
        amount: int,
        units: int,
        ttl: timedelta,
    ) -> HoldResult:
        row = await self._call(
            _PLACE_HOLD,
            {
                "user_id": user_id,
                "key": key,
                "job_kind": job_kind,
                "job_id": job_id,
                "amount": amount,
                "units": units,
                "ttl_s": ttl.total_seconds(),
            },
        )
        return HoldResult(
            hold_id=row.hold_id,
            status=row.status,
            amount=int(row.amount),
            balance=Balance(int(row.balance), int(row.held)),
            expires_at=row.expires_at,
            created=bool(row.created),
        )

    async def settle_hold(
        self, *, user_id: str, key: str, delivered: int, outcome: str, final: str = "settled"
    ) -> SettleResult:
        """Capture the price of ``delivered`` units of the hold and release the rest."""
        row = await self._call(
            _SETTLE_HOLD,
            {
                "user_id": user_id,
                "key": key,
                "delivered": delivered,
                "outcome": outcome,
                "final": final,
            },
            optional=True,
        )
        if row is None:
            # No account any more: the user was erased while the job ended (its hold went
            # with everything else), so there is nothing to settle.
            return SettleResult("erased", 0, 0, None, False)
        balance = None if row.balance is None else Balance(int(row.balance), int(row.held))
        return SettleResult(
            row.status, int(row.captured), int(row.released), balance, bool(row.changed)
        )

    async def claw_back(
        self,
        *,
        user_id: str,
        key: str,
        amount: int,
        reference: str,
        payment_intent: str | None,
        metadata: dict[str, Any] | None = None,
    ) -> ClawbackResult:
        row = await self._call(
            _CLAW_BACK,
            {
                "user_id": user_id,
                "key": key,
                "amount": amount,
                "reference": reference,
                "payment_intent": payment_intent,
                "metadata": _json(metadata),
            },
        )
        return ClawbackResult(
            row.status,
            int(row.taken),
            int(row.uncollected),
            Balance(int(row.balance or 0), int(row.held or 0)),
        )

    async def balance(self, user_id: str) -> Balance:
        row = await self._first(_BALANCE, {"user_id": user_id})
        return Balance(0, 0) if row is None else Balance(int(row.balance), int(row.held))

    async def page(self, user_id: str, *, before_id: int | None, limit: int) -> list[Entry]:
        """Newest first; ``before_id`` is the cursor (the last id of the previous page)."""
        stmt = sa.text(
            "SELECT id, kind, delta_balance, delta_held, balance_after, held_after, reference, "
            "reason, created_at FROM ledger_entries WHERE user_id = :user_id "
            + ("AND id < :before " if before_id is not None else "")
            + "ORDER BY id DESC LIMIT :limit"
        )
        params: dict[str, Any] = {"user_id": user_id, "limit": limit}
        if before_id is not None:
            params["before"] = before_id
        rows = await self._execute(stmt, params)
        return [Entry(**row._mapping) for row in rows]

    async def granted_for_payment(self, payment_intent: str) -> tuple[int, str | None]:
        """Credits this transaction's user was granted by a payment, and the entry's kind."""
        row = await self._one(
            "SELECT COALESCE(sum(delta_balance), 0) AS credits, min(kind) AS kind "
            "FROM ledger_entries WHERE payment_intent = :pi AND kind IN ('purchase', 'plan_grant')",
            {"pi": payment_intent},
        )
        return int(row.credits), row.kind

    async def clawbacks_asked(self, payment_intent: str) -> int:
        """Credits earlier refunds of a payment asked back (taken or not)."""
        asked = await self._scalar_one(
            "SELECT COALESCE(sum((metadata->>'requested')::bigint), 0) FROM ledger_entries "
            "WHERE kind = 'refund_clawback' AND payment_intent = :pi",
            {"pi": payment_intent},
        )
        return int(asked)

    async def due_holds(self, limit: int) -> list[DueHold]:
        """Open holds past their expiry, of every user: needs the system principal."""
        rows = await self._execute(
            "SELECT id, user_id, idempotency_key AS key, job_kind, job_id, amount FROM holds "
            "WHERE status = 'open' AND expires_at <= now() ORDER BY expires_at LIMIT :limit",
            {"limit": limit},
        )
        return [DueHold(**r._mapping) for r in rows]
