"""Stored Stripe events (``stripe_events``, not user-owned: which user an event concerns is
only known once it is applied), their staging for the applier, and per-object locks."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from visiona.kit.db import Database, outbox_values
from visiona.kit.events import Event
from visiona.kit.repository import Repository

# Store the event and, for a type billing acts on, stage it for the applier: one statement in
# autocommit (one round trip, one transaction) on the hot path of every webhook.
_STORE_SQL = (
    "INSERT INTO stripe_events (id, type, payload, processed_at, outcome) "
    "VALUES (%(id)s, %(type)s, %(payload)s::jsonb, %(processed_at)s, %(outcome)s) "
    "ON CONFLICT (id) DO NOTHING RETURNING id"
)
# For a type billing acts on, the same statement stages it for the applier. (Only then: an
# INSERT into the outbox wakes the relay even when it inserts nothing.)
_STORE_AND_STAGE = (
    "WITH stored AS (" + _STORE_SQL + "), staged AS ("
    "INSERT INTO outbox (event_id, routing_key, payload, headers) "
    "SELECT %(event_id)s, %(routing_key)s, %(event_payload)s::jsonb, "
    "%(event_headers)s::jsonb FROM stored RETURNING 1) "
    "SELECT id FROM stored"
)
_RESTAGE = sa.text(
    "UPDATE stripe_events SET staged_at = now() WHERE id IN ("
    "SELECT id FROM stripe_events WHERE processed_at IS NULL "
    "AND staged_at < now() - make_interval(secs => :age) "
    "ORDER BY staged_at LIMIT :limit FOR UPDATE SKIP LOCKED) RETURNING id, type"
)
_LOCK = sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")


@dataclass(frozen=True)
class StoredEvent:
    id: str
    type: str


async def store(
    db: Database,
    *,
    event_id: str,
    event_type: str,
    payload: str,
    closed_at: datetime | None,
    outcome: str | None,
    staged: Event | None,
) -> bool:
    """Store a delivery once by its id, with ``staged`` in the outbox when given (only if
    stored); False for an id stored before."""
    params: dict[str, Any] = {
        "id": event_id,
        "type": event_type,
        "payload": payload,
        "processed_at": closed_at,
        "outcome": outcome,
    }
    if staged is not None:
        values = outbox_values(staged)
        params |= {
            "event_id": values["event_id"],
            "routing_key": values["routing_key"],
            "event_payload": json.dumps(values["payload"]),
            "event_headers": json.dumps(values["headers"]),
        }
    async with db.single_statement() as conn:
        cursor = await conn.execute(_STORE_AND_STAGE if staged is not None else _STORE_SQL, params)
        return await cursor.fetchone() is not None


class StripeEventRepository(Repository):
    async def restage(self, older_than_s: float, limit: int) -> list[StoredEvent]:
        """Mark staged now the open events last staged over ``older_than_s`` ago."""
        rows = await self._execute(_RESTAGE, {"age": older_than_s, "limit": limit})
        return [StoredEvent(row.id, row.type) for row in rows]

    async def open_payload(self, event_id: str) -> dict[str, Any] | None:
        """The payload of a stored event still open, locked for the transaction."""
        row = await self._first(
            "SELECT payload, processed_at FROM stripe_events WHERE id = :id FOR UPDATE",
            {"id": event_id},
        )
        if row is None or row.processed_at is not None:
            return None
        payload = row.payload if isinstance(row.payload, dict) else json.loads(row.payload)
        return dict(payload)

    async def close(
        self, event_id: str, outcome: str, *, deferred: bool, payload: dict[str, Any] | None
    ) -> None:
        """Record the outcome; closed for good unless ``deferred``; ``payload`` replaces the
        stored one (None keeps it)."""
        await self._execute(
            "UPDATE stripe_events SET outcome = :o, processed_at = CASE WHEN :deferred "
            "THEN NULL ELSE now() END, payload = COALESCE(CAST(:redacted AS jsonb), payload) "
            "WHERE id = :id",
            {
                "o": outcome,
                "deferred": deferred,
                "redacted": None if payload is None else json.dumps(payload),
                "id": event_id,
            },
        )

    async def awaiting(self, outcome: str, payment_intent: str) -> list[StoredEvent]:
        """Open events of a payment left with ``outcome`` (waiting on something)."""
        rows = await self._execute(
            "SELECT id, type FROM stripe_events WHERE processed_at IS NULL AND outcome = :outcome "
            "AND payload->'data'->'object'->>'payment_intent' = :pi",
            {"pi": payment_intent, "outcome": outcome},
        )
        return [StoredEvent(row.id, row.type) for row in rows]

    async def lock_object(self, key: str) -> None:
        """Serialise, until the transaction ends, everything done about one Stripe object (a
        session, subscription, charge; ``payment:<pi>`` for a payment)."""
        await self._execute(_LOCK, {"key": key})
