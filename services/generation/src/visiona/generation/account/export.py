"""A user's export part (the ``exports`` rows' ``export`` step); see
:mod:`visiona.generation.account` for how a request becomes a row.

One ``export`` step writes the part from the start (a retry first clears what an
earlier attempt left, so the counts in the answer are exactly what is under the prefix): a
server-side copy of every full image as ``files/images/<image id>.<ext>``, then
``records/generations.json`` and ``records/images.json`` (whose ``file`` names the copy).
"""

from __future__ import annotations

import asyncio
from pathlib import PurePosixPath
from typing import Any

from visiona.generation.repository import account as requests
from visiona.generation.repository.account import EXPORTS, ExportRecord
from visiona.kit.db import Database
from visiona.kit.erasure import ExportPart
from visiona.kit.events import GenerationAccountExportedV1
from visiona.kit.jobs import JobSettings, RowJobs
from visiona.kit.logging import get_logger
from visiona.kit.storage import Storage

log = get_logger(__name__)

SERVICE = "generation"
# Server-side copies of one export in flight at once.
EXPORT_COPIES = 8


class ExportJobs(RowJobs[ExportRecord]):
    rows = EXPORTS
    name = "export"

    def __init__(self, db: Database, storage: Storage, settings: JobSettings) -> None:
        super().__init__(db, settings)
        self.storage = storage

    async def step_export(self, export: ExportRecord) -> None:
        part = ExportPart(self.storage, export.id, SERVICE)
        await self.storage.delete_prefix(part.prefix)
        async with self.db.uow(export.user_id) as uow:
            generations, images = await requests.export_records(uow)
        gate = asyncio.Semaphore(EXPORT_COPIES)

        async def copy(image: dict[str, Any]) -> dict[str, Any] | None:
            name = f"images/{image['id']}{PurePosixPath(image['object_key']).suffix}"
            async with gate:
                if not await part.add_file_if_present(image["object_key"], name):
                    return None  # deleted by the user since
            fields = {k: v for k, v in image.items() if k != "object_key"}
            return fields | {"file": f"files/{name}"}

        copied = await asyncio.gather(*(copy(image) for image in images))
        await part.add_records("generations", generations)
        await part.add_records("images", [image for image in copied if image is not None])
        async with self.locked(export) as (uow, current):
            uow.emit(part.done(GenerationAccountExportedV1, current.user_id))
            await requests.delete_request(uow, "exports", current.id)
            await uow.commit()
        log.info("export.written", export_id=str(export.id), objects=part.objects)
