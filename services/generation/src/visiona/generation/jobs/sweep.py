"""No object in S3 without a row that names it.

An ingest copies an output, then records its row. When the generation ends meanwhile (a
cancel, an erasure) the ingest removes what it copied; a crash between the copy and that
removal leaves objects no row names. The sweep makes each finished generation's folder
(``images/<owner key>/<generation>/``) hold only the images and thumbnails of its rows, once,
after a grace longer than any ingest step still running for it could take.
"""

from __future__ import annotations

import uuid

from visiona.generation.domain.image import owner_images_prefix
from visiona.generation.repository import generation as generations
from visiona.generation.repository import image as images
from visiona.kit.db import Database
from visiona.kit.logging import get_logger
from visiona.kit.owners import find_owner_key, legacy_prefix
from visiona.kit.storage import Storage

log = get_logger(__name__)


class ObjectSweep:
    def __init__(self, db: Database, storage: Storage, *, grace_s: float, batch: int) -> None:
        self.db = db
        self.storage = storage
        self.grace_s = grace_s
        self.batch = batch

    async def sweep_once(self) -> int:
        """Sweep the due generations; the number of objects removed."""
        async with self.db.uow(system=True) as uow:
            due = await generations.due_for_sweep(uow, self.grace_s, self.batch)
        removed = 0
        for generation_id, user_id in due:
            removed += await self._sweep(generation_id, user_id)
        if removed:
            log.warning("generation.unreferenced_objects_removed", objects=removed)
        return removed

    async def _sweep(self, generation_id: uuid.UUID, user_id: str) -> int:
        removed = 0
        async with self.db.uow(user_id) as uow:
            # The generation's lock: the legacy-keys move copies and renames under it.
            await generations.lock_id(uow, generation_id)
            owner = await find_owner_key(uow, user_id)
            folders = [owner_images_prefix(owner)] if owner else []
            folders += [p for p in [legacy_prefix("images", user_id)] if p]
            named = await images.keys_of_generation(uow, generation_id)
            for folder in folders:
                for key, _ in await self.storage.list_keys(f"{folder}{generation_id}/"):
                    if key not in named:
                        await self.storage.delete(key)
                        removed += 1
            await generations.mark_swept(uow, generation_id)
            await uow.commit()
        return removed
