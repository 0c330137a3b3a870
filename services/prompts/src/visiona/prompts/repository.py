"""All SQL of the prompts service."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from visiona.prompts.domain import Enhancement
from visiona.prompts.orm import EnhancementRow


class EnhancementRepository:
    def __init__(self, session: AsyncConnection) -> None:
        self.session = session

    async def add(self, enhancement: Enhancement) -> Enhancement:
        row = (
            await self.session.execute(
                sa.insert(EnhancementRow)
                .values(
                    id=enhancement.id,
                    user_id=enhancement.user_id,
                    prompt=enhancement.prompt,
                    enhanced_prompt=enhancement.enhanced_prompt,
                    model=enhancement.model,
                    input_tokens=enhancement.input_tokens,
                    output_tokens=enhancement.output_tokens,
                )
                .returning(EnhancementRow.created_at)
            )
        ).one()
        return Enhancement(**{**enhancement.__dict__, "created_at": row.created_at})
