"""The account requests' rows (``erasures``, ``exports``, each its own background job) and the
statements that erase or export all of a user's generation data (the unit of work acts as the
user: row-level security keeps every statement to their rows)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from visiona.kit.db import UnitOfWork
from visiona.kit.jobs import JobColumns
from visiona.kit.rows import RowStore


@dataclass
class ExportRecord(JobColumns):
    """An export request's row: its own background job (visiona.kit.jobs)."""

    created_at: datetime
    updated_at: datetime


@dataclass
class ErasureRecord(ExportRecord):
    """An erasure request's row: the job's columns, and which deletion and round it answers."""

    deletion_id: uuid.UUID
    round: int
    removed: int


ERASURES = RowStore("erasures", ErasureRecord)
EXPORTS = RowStore("exports", ExportRecord)

# What the user gets of their generations: everything but the job's bookkeeping and the
# provider's output links (expired an hour after the generation; the images are in the part).
GENERATION_EXPORT = (
    "id, user_id, model_id, version, prompt, final_prompt, enhanced, degraded, "
    "enhancement_reason, style_pack, num_outputs, aspect_ratio, seed, lora_scale, output_format, "
    "status, delivered, failure_reason, failure_message, hold_id, provider_prediction_id, "
    "provider_status, created_at, started_at, finished_at, updated_at"
)
# Storage keys are ours, not theirs: each image names its copy in the part instead.
IMAGE_EXPORT = (
    "id, generation_id, model_id, idx AS index, content_type, width, height, size_bytes, "
    "blurhash, favourite, created_at"
)


async def add_erasure(uow: UnitOfWork, user_id: str, deletion_id: uuid.UUID, round: int) -> None:
    """The erasure request's row (once per deletion and round), due now."""
    await uow.session.execute(
        sa.text(
            "INSERT INTO erasures (id, user_id, deletion_id, round, work, work_after) "
            "VALUES (:id, :user, :deletion, :round, 'purge', now()) "
            "ON CONFLICT (deletion_id, round) DO NOTHING"
        ),
        {"id": uuid.uuid4(), "user": user_id, "deletion": deletion_id, "round": round},
    )


async def add_export(uow: UnitOfWork, user_id: str, export_id: uuid.UUID) -> None:
    """The export request's row (once per export), due now."""
    await uow.session.execute(
        sa.text(
            "INSERT INTO exports (id, user_id, work, work_after) "
            "VALUES (:id, :user, 'export', now()) ON CONFLICT (id) DO NOTHING"
        ),
        {"id": export_id, "user": user_id},
    )


async def delete_request(uow: UnitOfWork, table: str, row_id: uuid.UUID) -> None:
    """An answered request's row (``erasures`` or ``exports``)."""
    assert table in ("erasures", "exports")
    await uow.session.execute(sa.text(f"DELETE FROM {table} WHERE id = :id"), {"id": row_id})


# -- erasure -------------------------------------------------------------------------------------


async def busy(uow: UnitOfWork) -> bool:
    """A job step still runs (or is scheduled) on the user's generations or exports."""
    count = (
        await uow.session.execute(
            sa.text(
                "SELECT (SELECT count(*) FROM generations WHERE work IS NOT NULL "
                "OR lease_until > now()) + (SELECT count(*) FROM exports WHERE work IS NOT NULL "
                "OR lease_until > now())"
            )
        )
    ).scalar_one()
    return int(count) > 0


async def stop_all_work(uow: UnitOfWork, reason: str) -> None:
    """End every unfinished generation of the user (``canceled`` for ``reason``, no outcome
    event) and clear every job of their generations and exports."""
    await uow.session.execute(
        sa.text(
            "UPDATE generations SET status = 'canceled', failure_reason = :reason, "
            "failure_message = NULL, finished_at = now(), updated_at = now() "
            "WHERE status NOT IN ('succeeded', 'failed', 'canceled')"
        ),
        {"reason": reason},
    )
    for table in ("generations", "exports"):
        await uow.session.execute(
            sa.text(
                f"UPDATE {table} SET work = NULL, work_after = NULL, updated_at = now() "
                "WHERE work IS NOT NULL"
            )
        )


async def prediction_canceled(uow: UnitOfWork, gen_id: uuid.UUID) -> None:
    await uow.session.execute(
        sa.text(
            "UPDATE generations SET provider_status = 'canceled', updated_at = now() WHERE id = :id"
        ),
        {"id": gen_id},
    )


async def add_removed(uow: UnitOfWork, erasure_id: uuid.UUID, n: int) -> None:
    if n:
        await uow.session.execute(
            sa.text("UPDATE erasures SET removed = removed + :n WHERE id = :id"),
            {"n": n, "id": erasure_id},
        )


async def export_ids(uow: UnitOfWork) -> list[uuid.UUID]:
    return [r[0] for r in await uow.session.execute(sa.text("SELECT id FROM exports"))]


async def delete_user_rows(uow: UnitOfWork) -> int:
    """Delete the user's webhook records, images, generations and exports; how many rows."""
    removed = 0
    for statement in (
        "DELETE FROM replicate_webhooks WHERE provider_id IN (SELECT "
        "provider_prediction_id FROM generations WHERE provider_prediction_id IS NOT NULL)",
        "DELETE FROM images",
        "DELETE FROM generations",
        "DELETE FROM exports",
    ):
        removed += int((await uow.session.execute(sa.text(statement))).rowcount or 0)
    return removed


# -- export --------------------------------------------------------------------------------------


async def export_records(uow: UnitOfWork) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The user's generations and images as exported (each image with its ``object_key``)."""

    async def rows(query: str) -> list[dict[str, Any]]:
        return [dict(row) for row in (await uow.session.execute(sa.text(query))).mappings()]

    generations = await rows(f"SELECT {GENERATION_EXPORT} FROM generations ORDER BY created_at, id")
    images = await rows(f"SELECT {IMAGE_EXPORT}, object_key FROM images ORDER BY created_at, id")
    return generations, images
