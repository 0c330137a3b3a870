"""Nothing stays under ``uploads/`` that no open upload slot owns, and slots never completed
go (:func:`remove_abandoned_uploads`).

An upload policy names one exact key, but a signed policy cannot be revoked: until it expires,
its key can be posted again — after the slot was completed (and its original deleted), after
the photo was deleted, after an erasure. S3 has no one-shot POST, so such a write cannot be
refused; it is made harmless instead. Completion reads the upload once and keeps only the
validated copy under ``photos/``; whatever is posted later is never read, and this sweep deletes
it: every object under ``uploads/`` whose key is not the ``upload_key`` of a photo still
``uploading``.

Keys are walked in order, ``batch`` per run, each run resuming after the last key the previous
one saw and starting over at the end, so a run is bounded and, at most one walk later, a key
posted again is gone. No grace is needed: a slot's row is committed before its policy is handed
out, so an object there without an open slot is never one still to be completed. Deleting is
idempotent and replicas may sweep at once.
"""

from __future__ import annotations

from visiona.kit.db import Database
from visiona.kit.logging import get_logger
from visiona.kit.storage import Storage
from visiona.training.repository import photo as repo
from visiona.training.service.photo import UPLOADS_ROOT

log = get_logger(__name__)


class UploadSweep:
    def __init__(self, db: Database, storage: Storage, *, batch: int) -> None:
        self.db = db
        self.storage = storage
        self.batch = batch
        self._after: str | None = None

    @property
    def at_start(self) -> bool:
        """The next run starts the walk over (the last one reached the end)."""
        return self._after is None

    async def sweep_once(self) -> int:
        """Look at the next ``batch`` keys under ``uploads/``; the number of objects removed."""
        listed = await self.storage.list_keys(
            UPLOADS_ROOT, start_after=self._after, limit=self.batch
        )
        self._after = listed[-1][0] if len(listed) == self.batch else None
        if not listed:
            return 0
        keys = [key for key, _ in listed]
        async with self.db.uow(system=True) as uow:
            owned = await repo.open_slot_keys(uow, keys)
        unowned = [key for key in keys if key not in owned]
        for key in unowned:
            await self.storage.delete(key)
        if unowned:
            log.warning("training.unowned_uploads_removed", objects=len(unowned))
        return len(unowned)


async def remove_abandoned_uploads(db: Database, storage: Storage, older_than_s: float) -> int:
    """Slots whose upload policy expired long ago and were never completed: row and object."""
    async with db.uow(system=True) as uow:
        rows = await repo.abandoned_slots(uow, older_than_s)
    for row in rows:
        await storage.delete(row.upload_key)
        async with db.uow(row.user_id) as uow:
            await repo.delete_slot(uow, row.id)
            await uow.commit()
    return len(rows)
