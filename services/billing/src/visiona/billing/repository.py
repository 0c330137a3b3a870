"""All SQL of the billing service."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from visiona.billing.domain import USAGE_PROMPT_ENHANCEMENT, UsageSummary
from visiona.billing.orm import UsageRecordRow


class UsageRepository:
    def __init__(self, session: AsyncConnection) -> None:
        self.session = session

    async def record(
        self,
        *,
        user_id: str,
        source_event_id: uuid.UUID,
        kind: str,
        quantity: int,
        occurred_at: datetime,
    ) -> None:
        await self.session.execute(
            insert(UsageRecordRow)
            .values(
                id=uuid.uuid4(),
                user_id=user_id,
                source_event_id=source_event_id,
                kind=kind,
                quantity=quantity,
                occurred_at=occurred_at,
            )
            .on_conflict_do_nothing(index_elements=[UsageRecordRow.source_event_id])
        )

    async def summary(self) -> UsageSummary:
        """Totals over the rows visible to this transaction's user (RLS)."""
        row = (
            await self.session.execute(
                sa.select(
                    sa.func.count().label("n"),
                    sa.func.coalesce(sa.func.sum(UsageRecordRow.quantity), 0).label("tokens"),
                ).where(UsageRecordRow.kind == USAGE_PROMPT_ENHANCEMENT)
            )
        ).one()
        return UsageSummary(enhancements=int(row.n), llm_tokens=int(row.tokens))
