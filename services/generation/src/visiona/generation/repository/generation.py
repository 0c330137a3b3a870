"""The ``generations`` table: the aggregate loaded (``FOR UPDATE``) and saved in one unit of
work, its outcome events emitted into the same transaction (the outbox)."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from visiona.generation.domain.generation import Generation
from visiona.kit.db import UnitOfWork
from visiona.kit.events import (
    Event,
    GenerationCanceledV1,
    GenerationFailedV1,
    GenerationSucceededV1,
)
from visiona.kit.idempotency import RequestKey
from visiona.kit.logging import get_logger
from visiona.kit.paging import Keyset
from visiona.kit.rows import RowStore, lock_user_scope

log = get_logger(__name__)

ROWS = RowStore("generations", Generation)
load = ROWS.load


async def save(uow: UnitOfWork, gen: Generation) -> None:
    """Write what the generation's transitions changed (one UPDATE) and emit the events they
    raised, in the unit of work's transaction."""
    await ROWS.save(uow, gen, **gen.pull_changes())
    for event in gen.pull_events():
        uow.emit(event)
        _log_outcome(event)


def _log_outcome(event: Event) -> None:
    if isinstance(event, GenerationFailedV1):
        log.info("generation.failed", generation_id=str(event.generation_id), reason=event.reason)
    elif isinstance(event, GenerationCanceledV1):
        log.info("generation.canceled", generation_id=str(event.generation_id), reason=event.reason)
    elif isinstance(event, GenerationSucceededV1):
        log.info(
            "generation.succeeded",
            generation_id=str(event.generation_id),
            requested=event.requested,
            delivered=event.delivered,
        )


async def made_with(uow: UnitOfWork, user_id: str, key: RequestKey | None) -> Generation | None:
    """The generation the user's idempotency key made, if any (refused for another request)."""
    return await ROWS.made_with(uow, user_id, key)


async def lock_user(uow: UnitOfWork, user_id: str) -> None:
    """Serialise the user's new generations (their limit, their idempotency keys)."""
    await lock_user_scope(uow, "generations", user_id)


async def count_unfinished(uow: UnitOfWork) -> int:
    return int(
        (
            await uow.session.execute(
                sa.text(
                    "SELECT count(*) FROM generations WHERE status NOT IN "
                    "('succeeded', 'failed', 'canceled')"
                )
            )
        ).scalar_one()
    )


async def insert(uow: UnitOfWork, *, ask_again_s: float, **values: Any) -> None:
    """A new generation awaiting credits; until billing answers, the row is its own reminder
    (its ``ask_credits`` step is due ``ask_again_s`` from now, by the database's clock)."""
    await uow.session.execute(
        sa.text(
            "INSERT INTO generations (id, user_id, model_id, version, prompt, "
            "final_prompt, enhanced, degraded, enhancement_reason, style_pack, "
            "num_outputs, aspect_ratio, seed, lora_scale, output_format, status, work, "
            "work_after, idempotency_key, request_fingerprint) VALUES "
            "(:id, :user_id, :model_id, :version, :prompt, :final_prompt, :enhanced, :degraded, "
            ":enhancement_reason, :style_pack, :num_outputs, :aspect_ratio, :seed, :lora_scale, "
            ":output_format, 'awaiting_credits', 'ask_credits', "
            "now() + make_interval(secs => :ask_again), :idempotency_key, :request_fingerprint)"
        ),
        {**values, "ask_again": ask_again_s},
    )


async def page(uow: UnitOfWork, keyset: Keyset) -> list[Generation]:
    """A page of the user's generations, newest first."""
    return await ROWS.page(uow, keyset)


async def at_provider(uow: UnitOfWork, *, lock: bool) -> list[Generation]:
    """The user's generations whose prediction may still run at the provider."""
    rows = await uow.session.execute(
        sa.text(f"{ROWS.select} ORDER BY created_at{' FOR UPDATE' if lock else ''}")
    )
    return [gen for gen in map(ROWS.record, rows) if gen.provider_running]


async def lock_id(uow: UnitOfWork, gen_id: uuid.UUID) -> None:
    """The generation's lock, without loading it (the object sweep and the legacy-keys move
    take it so that neither works on a folder the other is changing)."""
    await uow.session.execute(
        sa.text("SELECT 1 FROM generations WHERE id = :g FOR UPDATE"), {"g": gen_id}
    )


async def due_for_sweep(uow: UnitOfWork, grace_s: float, n: int) -> list[tuple[uuid.UUID, str]]:
    """Finished generations (``id, user_id``) whose folders were not swept yet, ``grace_s``
    after they finished."""
    rows = await uow.session.execute(
        sa.text(
            "SELECT id, user_id FROM generations WHERE objects_swept_at IS NULL "
            "AND finished_at IS NOT NULL "
            "AND finished_at < now() - make_interval(secs => :grace) "
            "ORDER BY finished_at LIMIT :n"
        ),
        {"grace": grace_s, "n": n},
    )
    return [(r.id, r.user_id) for r in rows]


async def mark_swept(uow: UnitOfWork, gen_id: uuid.UUID) -> None:
    await uow.session.execute(
        sa.text("UPDATE generations SET objects_swept_at = now() WHERE id = :g"), {"g": gen_id}
    )
