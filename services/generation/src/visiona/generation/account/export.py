"""A user's export part (the ``exports`` rows' ``export`` step); see
:mod:`visiona.generation.account` for how a request becomes a row.

One ``export`` step writes the part from the start (a retry first clears what an
earlier attempt left, so the counts in the answer are exactly what is under the prefix): a
server-side copy of every full image as ``files/images/<image id>.<ext>``, then
``records/generations.json`` and ``records/images.json`` (whose ``file`` names the copy).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

import sqlalchemy as sa
from minio.error import S3Error

from visiona.kit.db import Database, UnitOfWork
from visiona.kit.erasure import ExportPart
from visiona.kit.events import GenerationAccountExportedV1
from visiona.kit.jobs import JobSettings, RowJobs
from visiona.kit.logging import get_logger
from visiona.kit.rows import RowStore
from visiona.kit.storage import Storage

log = get_logger(__name__)

SERVICE = "generation"
# Server-side copies of one export in flight at once.
EXPORT_COPIES = 8
_MISSING = ("NoSuchKey", "NoSuchObject", "NotFound")

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


@dataclass
class ExportRecord:
    id: uuid.UUID
    user_id: str
    work: str | None
    work_after: datetime | None
    work_attempts: int
    lease_until: datetime | None
    created_at: datetime
    updated_at: datetime


EXPORTS = RowStore("exports", ExportRecord)


async def _rows(uow: UnitOfWork, query: str) -> list[dict[str, Any]]:
    return [dict(row) for row in (await uow.session.execute(sa.text(query))).mappings()]


class ExportJobs(RowJobs[ExportRecord]):
    table = "exports"
    name = "export"

    def __init__(self, db: Database, storage: Storage, settings: JobSettings) -> None:
        super().__init__(db, settings)
        self.storage = storage

    async def load(self, uow: UnitOfWork, row_id: uuid.UUID, *, lock: bool) -> ExportRecord | None:
        return await EXPORTS.load(uow, row_id, lock=lock)

    async def save(self, uow: UnitOfWork, row: ExportRecord, **changes: Any) -> None:
        await EXPORTS.save(uow, row, **changes)

    async def step_export(self, export: ExportRecord) -> None:
        part = ExportPart(self.storage, export.id, SERVICE)
        await self.storage.delete_prefix(part.prefix)
        async with self.db.uow(export.user_id) as uow:
            generations = await _rows(
                uow, f"SELECT {GENERATION_EXPORT} FROM generations ORDER BY created_at, id"
            )
            images = await _rows(
                uow, f"SELECT {IMAGE_EXPORT}, object_key FROM images ORDER BY created_at, id"
            )
        gate = asyncio.Semaphore(EXPORT_COPIES)

        async def copy(image: dict[str, Any]) -> dict[str, Any] | None:
            name = f"images/{image['id']}{PurePosixPath(image['object_key']).suffix}"
            async with gate:
                try:
                    await part.add_file(image["object_key"], name)
                except S3Error as exc:
                    if exc.code in _MISSING:
                        return None  # deleted by the user since
                    raise
            fields = {k: v for k, v in image.items() if k != "object_key"}
            return fields | {"file": f"files/{name}"}

        copied = await asyncio.gather(*(copy(image) for image in images))
        await part.add_records("generations", generations)
        await part.add_records("images", [image for image in copied if image is not None])
        async with self.locked(export) as (uow, current):
            uow.emit(part.done(GenerationAccountExportedV1, current.user_id))
            await uow.session.execute(
                sa.text("DELETE FROM exports WHERE id = :id"), {"id": current.id}
            )
            await uow.commit()
        log.info("export.written", export_id=str(export.id), objects=part.objects)
