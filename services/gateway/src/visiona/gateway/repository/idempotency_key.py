"""``idempotency_keys``: the three calls of a keyed request and the sweep of expired keys.

The claim, finish and release are plpgsql functions of migrations 0002 and 0003 (each one
round trip on the edge's hot path, acting as the user under row-level security); this module
is the one place that calls them.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import sqlalchemy as sa

from visiona.kit.db import Database


@dataclass(frozen=True)
class Claim:
    outcome: str  # claimed | in_progress | done
    same_request: bool
    status: int | None
    headers: list[tuple[bytes, bytes]]
    body: bytes


_CLAIM = (
    "SELECT outcome, same_request, status, headers, body "
    "FROM idempotency_claim(%s, %s, %s, %s, %s, %s, %s)"
)
_FINISH = "SELECT idempotency_finish(%s, %s, %s, %s, %s::jsonb, %s)"
_RELEASE = "SELECT idempotency_release(%s, %s, %s)"
_SWEEP = sa.text("DELETE FROM idempotency_keys WHERE expires_at <= now()")


class IdempotencyStore:
    """The three calls of a keyed request, one round trip each."""

    def __init__(self, db: Database, *, lease_s: float, ttl_s: float) -> None:
        self.db = db
        self.lease_s = lease_s
        self.ttl_s = ttl_s

    async def claim(
        self, user_id: str, key: str, fp: bytes, attempt: uuid.UUID, *, take_over: bool = False
    ) -> Claim:
        """Claim the key for ``attempt``. With ``take_over``, an attempt still in progress
        with the same fingerprint loses the claim to this one whatever its lease."""
        async with self.db.single_statement() as conn:
            cursor = await conn.execute(
                _CLAIM, (user_id, key, fp, attempt, self.lease_s, self.ttl_s, take_over)
            )
            row = await cursor.fetchone()
        assert row is not None
        outcome, same, status, headers, body = row
        pairs = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in headers or []]
        return Claim(outcome, bool(same), status, pairs, bytes(body or b""))

    async def finish(
        self,
        user_id: str,
        key: str,
        attempt: uuid.UUID,
        status: int,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
    ) -> bool:
        stored = json.dumps([[n.decode("latin-1"), v.decode("latin-1")] for n, v in headers])
        async with self.db.single_statement() as conn:
            cursor = await conn.execute(_FINISH, (user_id, key, attempt, status, stored, body))
            row = await cursor.fetchone()
        return bool(row and row[0])

    async def release(self, user_id: str, key: str, attempt: uuid.UUID) -> None:
        async with self.db.single_statement() as conn:
            await conn.execute(_RELEASE, (user_id, key, attempt))


async def sweep(db: Database) -> int:
    """Delete expired keys of every user (the system principal may delete only those)."""
    async with db.uow(system=True) as uow:
        result = await uow.session.execute(_SWEEP)
        await uow.commit()
    return int(result.rowcount or 0)
