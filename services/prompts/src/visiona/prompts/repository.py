"""All SQL of the prompts service: textual SQL on the unit of work's connection.

The tables (migrations 0001, 0002; connections find them on ``search_path``):

- ``enhancements``: one stored rewrite (user-owned: row-level security on user_id);
- ``style_packs`` and ``style_templates``: the curated catalogue, seeded and re-curated by
  migrations only (the same for everyone, read-only here);
- ``prompt_cache``: PreparePrompt answers by (user_id, key) until ``expires_at`` (user-owned);
- ``moderation_decisions``: a refused prompt and why (user-owned); ``source`` is ``rules``,
  ``llm`` or ``provider`` (the provider's own safety system).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from visiona.kit.repository import Repository
from visiona.prompts.domain.judge import Judgement
from visiona.prompts.domain.moderation import ModerationDecision
from visiona.prompts.domain.prompt import Enhancement, StylePack

_ENHANCEMENT_COLUMNS = (
    "id, user_id, prompt, enhanced_prompt, model, input_tokens, output_tokens, created_at"
)
_DECISION_COLUMNS = (
    "id, user_id, prompt, style_pack, source, category, message, provider, model, "
    "from_cache, created_at"
)


class EnhancementRepository(Repository):
    async def add(self, enhancement: Enhancement) -> Enhancement:
        row = await self._one(
            "INSERT INTO enhancements (id, user_id, prompt, enhanced_prompt, model, "
            "input_tokens, output_tokens) VALUES (:id, :user_id, :prompt, :enhanced_prompt, "
            ":model, :input_tokens, :output_tokens) RETURNING created_at",
            {k: v for k, v in asdict(enhancement).items() if k != "created_at"},
        )
        return Enhancement(**{**asdict(enhancement), "created_at": row.created_at})


class StylePackRepository(Repository):
    """The catalogue: read-only to the service (the migrations curate it)."""

    async def list(self, pack_id: str | None = None) -> list[StylePack]:
        """Every pack in display order, or only ``pack_id`` (an empty list when unknown)."""
        only = pack_id is not None
        by_pack: dict[str, list[str]] = {}
        templates = await self._execute(
            "SELECT pack_id, template FROM style_templates"
            f"{' WHERE pack_id = :pack' if only else ''} ORDER BY pack_id, position",
            {"pack": pack_id},
        )
        for t in templates:
            by_pack.setdefault(t.pack_id, []).append(t.template)
        packs = await self._execute(
            "SELECT id, name, description, negative_cues FROM style_packs"
            f"{' WHERE id = :pack' if only else ''} ORDER BY position",
            {"pack": pack_id},
        )
        return [
            StylePack(
                id=r.id,
                name=r.name,
                description=r.description,
                templates=tuple(by_pack.get(r.id, ())),
                negative_cues=tuple(r.negative_cues),
            )
            for r in packs
        ]

    async def get(self, pack_id: str) -> StylePack | None:
        found = await self.list(pack_id)
        return found[0] if found else None


@dataclass(frozen=True)
class CachedAnswer:
    judgement: Judgement
    enhancement_id: uuid.UUID | None


class PromptCacheRepository(Repository):
    """PreparePrompt answers by (user, key), for a TTL.

    Why per user, with row-level security, rather than one cache shared by everyone: the
    trigger word is in the key, but users choose trigger words and two can pick the same
    one, so a shared entry could be served across users. That would tell one user that
    someone else asked for exactly this prompt recently (a timing oracle), and it would keep
    a user's prompt text in a table their erasure cannot find. Identical requests come
    overwhelmingly from the same user (regenerating, retrying), so little is lost. Entries
    past ``expires_at`` are never served and the sweeper (:mod:`visiona.prompts.jobs`)
    deletes them.
    """

    async def get(self, user_id: str, key: str) -> CachedAnswer | None:
        row = await self._first(
            "SELECT answer, enhancement_id FROM prompt_cache "
            "WHERE user_id = :user_id AND key = :key AND expires_at > now()",
            {"user_id": user_id, "key": key},
        )
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
        await self._execute(
            "INSERT INTO prompt_cache (user_id, key, provider, model, answer, enhancement_id, "
            "expires_at) VALUES (:user_id, :key, :provider, :model, CAST(:answer AS jsonb), "
            ":enhancement_id, now() + :ttl) "
            "ON CONFLICT (user_id, key) DO UPDATE SET provider = excluded.provider, "
            "model = excluded.model, answer = excluded.answer, "
            "enhancement_id = excluded.enhancement_id, created_at = now(), "
            "expires_at = excluded.expires_at",
            {
                "user_id": user_id,
                "key": key,
                "provider": provider,
                "model": model,
                "answer": json.dumps(judgement.to_json()),
                "enhancement_id": enhancement_id,
                "ttl": ttl,
            },
        )

    async def delete_expired(self, limit: int = 1000) -> int:
        """Delete up to ``limit`` expired entries of any user (run as the system principal)."""
        # No FOR UPDATE: row locks need an UPDATE policy, which the system principal has not;
        # two sweepers deleting the same rows is harmless.
        return await self._affected(
            "DELETE FROM prompt_cache WHERE (user_id, key) IN (SELECT user_id, key "
            "FROM prompt_cache WHERE expires_at <= now() LIMIT :limit)",
            {"limit": limit},
        )


class ModerationDecisionRepository(Repository):
    async def add(self, decision: ModerationDecision) -> None:
        await self._execute(
            "INSERT INTO moderation_decisions (id, user_id, prompt, style_pack, source, "
            "category, message, provider, model, from_cache) VALUES (:id, :user_id, :prompt, "
            ":style_pack, :source, :category, :message, :provider, :model, :from_cache)",
            asdict(decision),
        )


# Every table of the prompts schema that names a user (each has row-level security on
# user_id); an erasure deletes the user's rows of each. The style packs are the same for
# everyone; the outbox is the kit's (visiona.kit.erasure.forget_published_events).
USER_TABLES = ("enhancements", "prompt_cache", "moderation_decisions")


class AccountRepository(Repository):
    """A user's rows in bulk (erasure and export); the transaction acts as that user (RLS)."""

    async def delete_all(self, user_id: str) -> int:
        removed = 0
        for table in USER_TABLES:
            removed += await self._affected(
                f"DELETE FROM {table} WHERE user_id = :user", {"user": user_id}
            )
        return removed

    async def enhancements(self, user_id: str) -> list[dict[str, Any]]:
        return await self._records("enhancements", _ENHANCEMENT_COLUMNS, user_id)

    async def moderation_decisions(self, user_id: str) -> list[dict[str, Any]]:
        return await self._records("moderation_decisions", _DECISION_COLUMNS, user_id)

    async def _records(self, table: str, columns: str, user_id: str) -> list[dict[str, Any]]:
        """Every column of the user's rows of ``table``, oldest first."""
        rows = await self._execute(
            f"SELECT {columns} FROM {table} WHERE user_id = :user ORDER BY created_at, id",
            {"user": user_id},
        )
        return [dict(row._mapping) for row in rows]
