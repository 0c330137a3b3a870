"""Usage records: one billable use of the platform, recorded from another service's event.

User-owned (row-level security on user_id). ``source_event_id`` is unique: an event is
recorded once even if the inbox were bypassed.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa

from visiona.billing.domain.usage import USAGE_PROMPT_ENHANCEMENT, UsageSummary
from visiona.kit.repository import Repository

_RECORD = sa.text(
    "INSERT INTO usage_records (id, user_id, source_event_id, kind, quantity, occurred_at) "
    "VALUES (:id, :user_id, :source_event_id, :kind, :quantity, :occurred_at) "
    "ON CONFLICT (source_event_id) DO NOTHING"
)
_SUMMARY = sa.text(
    "SELECT count(*) AS n, COALESCE(sum(quantity), 0) AS tokens FROM usage_records "
    "WHERE kind = :kind"
)


class UsageRepository(Repository):
    async def record(
        self,
        *,
        user_id: str,
        source_event_id: uuid.UUID,
        kind: str,
        quantity: int,
        occurred_at: datetime,
    ) -> None:
        await self._execute(
            _RECORD,
            {
                "id": uuid.uuid4(),
                "user_id": user_id,
                "source_event_id": source_event_id,
                "kind": kind,
                "quantity": quantity,
                "occurred_at": occurred_at,
            },
        )

    async def summary(self) -> UsageSummary:
        """Totals over the rows visible to this transaction's user (RLS)."""
        row = await self._one(_SUMMARY, {"kind": USAGE_PROMPT_ENHANCEMENT})
        return UsageSummary(enhancements=int(row.n), llm_tokens=int(row.tokens))
