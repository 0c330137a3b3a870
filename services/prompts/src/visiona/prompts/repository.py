"""All SQL of the prompts service."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from visiona.prompts.domain import Enhancement, ModerationDecision, StylePack
from visiona.prompts.judge import Judgement
from visiona.prompts.orm import (
    EnhancementRow,
    ModerationDecisionRow,
    PromptCacheRow,
    StylePackRow,
    StyleTemplateRow,
)


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


class StylePackRepository:
    """The catalogue: read-only to the service (the migrations curate it)."""

    def __init__(self, session: AsyncConnection) -> None:
        self.session = session

    async def list(self, pack_id: str | None = None) -> list[StylePack]:
        """Every pack in display order, or only ``pack_id`` (an empty list when unknown)."""
        packs = sa.select(
            StylePackRow.id, StylePackRow.name, StylePackRow.description, StylePackRow.negative_cues
        ).order_by(StylePackRow.position)
        templates = sa.select(StyleTemplateRow.pack_id, StyleTemplateRow.template).order_by(
            StyleTemplateRow.pack_id, StyleTemplateRow.position
        )
        if pack_id is not None:
            packs = packs.where(StylePackRow.id == pack_id)
            templates = templates.where(StyleTemplateRow.pack_id == pack_id)
        by_pack: dict[str, list[str]] = {}
        for t in await self.session.execute(templates):
            by_pack.setdefault(t.pack_id, []).append(t.template)
        return [
            StylePack(
                id=r.id,
                name=r.name,
                description=r.description,
                templates=tuple(by_pack.get(r.id, ())),
                negative_cues=tuple(r.negative_cues),
            )
            for r in await self.session.execute(packs)
        ]

    async def get(self, pack_id: str) -> StylePack | None:
        found = await self.list(pack_id)
        return found[0] if found else None


@dataclass(frozen=True)
class CachedAnswer:
    judgement: Judgement
    enhancement_id: uuid.UUID | None


class PromptCacheRepository:
    """PreparePrompt answers by (user, key), for a TTL.

    Why per user, with row-level security, rather than one cache shared by everyone: the
    trigger word is in the key, but users choose trigger words and two can pick the same
    one, so a shared entry could be served across users. That would tell one user that
    someone else asked for exactly this prompt recently (a timing oracle), and it would keep
    a user's prompt text in a table their erasure cannot find. Identical requests come
    overwhelmingly from the same user (regenerating, retrying), so little is lost. Entries
    past ``expires_at`` are never served and the sweeper deletes them.
    """

    def __init__(self, session: AsyncConnection) -> None:
        self.session = session

    async def get(self, user_id: str, key: str) -> CachedAnswer | None:
        row = (
            await self.session.execute(
                sa.select(PromptCacheRow.answer, PromptCacheRow.enhancement_id).where(
                    PromptCacheRow.user_id == user_id,
                    PromptCacheRow.key == key,
                    PromptCacheRow.expires_at > sa.func.now(),
                )
            )
        ).one_or_none()
        if row is None:
            return None
        return CachedAnswer(Judgement.from_json(row.answer), row.enhancement_id)

    async def put(
        self,
        *,
        user_id: str,
        key: str,
        provider: str,
        model: str,
        judgement: Judgement,
        enhancement_id: uuid.UUID | None,
        ttl: timedelta,
    ) -> None:
        values = {
            "user_id": user_id,
            "key": key,
            "provider": provider,
            "model": model,
            "answer": judgement.to_json(),
            "enhancement_id": enhancement_id,
            "expires_at": sa.func.now() + ttl,
        }
        statement = pg_insert(PromptCacheRow).values(**values)
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=[PromptCacheRow.user_id, PromptCacheRow.key],
                set_={
                    "provider": statement.excluded.provider,
                    "model": statement.excluded.model,
                    "answer": statement.excluded.answer,
                    "enhancement_id": statement.excluded.enhancement_id,
                    "created_at": sa.func.now(),
                    "expires_at": statement.excluded.expires_at,
                },
            )
        )

    async def delete_expired(self, limit: int = 1000) -> int:
        """Delete up to ``limit`` expired entries of any user (run as the system principal)."""
        # No FOR UPDATE: row locks need an UPDATE policy, which the system principal has not;
        # two sweepers deleting the same rows is harmless.
        doomed = (
            sa.select(PromptCacheRow.user_id, PromptCacheRow.key)
            .where(PromptCacheRow.expires_at <= sa.func.now())
            .limit(limit)
        )
        result = await self.session.execute(
            sa.delete(PromptCacheRow).where(
                sa.tuple_(PromptCacheRow.user_id, PromptCacheRow.key).in_(doomed)
            )
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


class ModerationDecisionRepository:
    def __init__(self, session: AsyncConnection) -> None:
        self.session = session

    async def add(self, decision: ModerationDecision) -> None:
        await self.session.execute(sa.insert(ModerationDecisionRow).values(**decision.__dict__))


# Every table of the prompts schema that names a user (each has row-level security on
# user_id); an erasure deletes the user's rows of each. The style packs are the same for
# everyone; the outbox is the kit's (visiona.kit.erasure.forget_published_events).
USER_TABLES = ("enhancements", "prompt_cache", "moderation_decisions")


class AccountRepository:
    """A user's rows in bulk; the transaction acts as that user (RLS)."""

    def __init__(self, session: AsyncConnection) -> None:
        self.session = session

    async def delete_all(self, user_id: str) -> int:
        removed = 0
        for table in USER_TABLES:
            result = await self.session.execute(
                sa.text(f"DELETE FROM {table} WHERE user_id = :user"), {"user": user_id}
            )
            removed += int(result.rowcount or 0)  # type: ignore[attr-defined]
        return removed

    async def enhancements(self, user_id: str) -> list[dict[str, Any]]:
        rows = await self.session.execute(
            sa.select(EnhancementRow.__table__)
            .where(EnhancementRow.user_id == user_id)
            .order_by(EnhancementRow.created_at, EnhancementRow.id)
        )
        return [dict(row._mapping) for row in rows]

    async def moderation_decisions(self, user_id: str) -> list[dict[str, Any]]:
        rows = await self.session.execute(
            sa.select(ModerationDecisionRow.__table__)
            .where(ModerationDecisionRow.user_id == user_id)
            .order_by(ModerationDecisionRow.created_at, ModerationDecisionRow.id)
        )
        return [dict(row._mapping) for row in rows]
