"""Retention of training photos and datasets (issue 6, ADR 0007).

The rule, with R = ``TRAINING_PHOTO_RETENTION_S`` (30 days by default); a training has ended
when its model is ``succeeded``, ``failed`` or ``canceled`` (``models.finished_at``):

- A model's **dataset zip** is deleted from S3 once R has passed since its training ended.
  ``models.dataset_purged_at`` records it, so each model is swept once.
- A **photo** (its S3 objects, then its row) is deleted once it is older than R, no model that
  used it is still in progress (``awaiting_credits``, ``preparing``, ``queued``, ``training``)
  and every training that used it ended more than R ago. A photo never used in a training
  goes R after its upload.
- The **model and its LoRA weights** (our copy and the provider's version) are not subject to
  it: a user keeps a model until they delete it (then the purge in ``jobs.model`` removes it all).
- **Provider side** there is nothing to delete: the trainer fetched the zip through a presigned
  URL of ours that expired an hour after the launch, and nothing is uploaded to Replicate's
  Files API (ADR 0007 says what Replicate itself keeps).

How it runs: every replica sweeps periodically. It finds due rows as the system principal
(read-only across users), then handles each row as its owner in a transaction of its own: the
row is locked ``FOR UPDATE SKIP LOCKED`` (a row another replica or a request holds is skipped
and comes back at the next sweep) and the rule is checked again under the lock, in a
statement of its own: a model being created locks its photos ``FOR SHARE`` before it is
inserted, so once the photo is locked every model that uses it is visible. Then the objects
are deleted, then the row. An object delete that fails rolls the row back, so the next sweep
retries; deleting an object that is already gone succeeds.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from visiona.kit.db import Database, UnitOfWork
from visiona.kit.logging import get_logger
from visiona.kit.owners import find_owner_key
from visiona.kit.storage import Storage
from visiona.training.domain.model import TERMINAL, ModelStatus
from visiona.training.jobs.model import dataset_key
from visiona.training.repository import model as model_repo
from visiona.training.repository import photo as photo_repo

log = get_logger(__name__)

# A model not yet ended may still need its photos (the dataset is built from them while
# preparing, and a failed launch attempt builds it again).
ENDED = sorted(s.value for s in TERMINAL)
IN_PROGRESS = sorted(s.value for s in ModelStatus if not s.terminal)

# The due rows of one kind, across users, after a keyset position (visiona.training.repository).
_DueQuery = Callable[
    [UnitOfWork, dict[str, Any], tuple[datetime, uuid.UUID] | None], Awaitable[list[Any]]
]


@dataclass
class RetentionSwept:
    """What one sweep deleted, and how many deletions failed (retried at the next sweep)."""

    datasets: int = 0
    photos: int = 0
    failures: int = 0


async def sweep_retention(
    db: Database, storage: Storage, retention_s: float, *, batch: int = 50
) -> RetentionSwept:
    """Delete every dataset and photo that the retention ``retention_s`` has made due."""
    if retention_s <= 0:
        raise ValueError("the retention must be positive")
    swept = RetentionSwept()
    keep = {"keep": retention_s, "in_progress": IN_PROGRESS, "ended": ENDED}
    async for model_id, user_id in _due(db, model_repo.due_datasets, keep, batch):
        try:
            swept.datasets += await _purge_dataset(db, storage, model_id, user_id, keep)
        except Exception as exc:
            swept.failures += 1
            log.warning(
                "training.retention_dataset_failed", model_id=str(model_id), error=repr(exc)
            )
    async for photo_id, user_id in _due(db, photo_repo.due_photos, keep, batch):
        try:
            swept.photos += await _purge_photo(db, storage, photo_id, user_id, keep)
        except Exception as exc:
            swept.failures += 1
            log.warning("training.retention_photo_failed", photo_id=str(photo_id), error=repr(exc))
    log.info(
        "training.retention_swept",
        datasets=swept.datasets,
        photos=swept.photos,
        failures=swept.failures,
    )
    return swept


async def _due(
    db: Database, query: _DueQuery, params: dict[str, Any], batch: int
) -> AsyncIterator[tuple[uuid.UUID, str]]:
    """``(id, owner)`` of the due rows, read across users ``batch`` at a time in keyset
    order (a row skipped or failed in this sweep is not read again until the next one)."""
    after: tuple[datetime, uuid.UUID] | None = None
    while True:
        async with db.uow(system=True) as uow:
            rows = await query(uow, {**params, "n": batch}, after)
        for row in rows:
            yield row.id, row.user_id
        if len(rows) < batch:
            return
        after = (rows[-1].at, rows[-1].id)


async def _purge_dataset(
    db: Database, storage: Storage, model_id: uuid.UUID, user_id: str, params: dict[str, Any]
) -> int:
    async with db.uow(user_id) as uow:
        model = await model_repo.lock_due_dataset(uow, model_id, params)
        if model is None:
            return 0  # another replica has it, or it no longer qualifies
        # The recorded key, and the one a launch interrupted before recording it would have used.
        owner = await find_owner_key(uow, user_id)
        keys = {model.dataset_key} if model.dataset_key else set()
        if owner is not None:
            keys.add(dataset_key(owner, model.id))
        for key in sorted(keys):
            await storage.delete(key)
        model.dataset_purged(datetime.now(UTC))
        await model_repo.save(uow, model)
        await uow.commit()
    return 1


async def _purge_photo(
    db: Database, storage: Storage, photo_id: uuid.UUID, user_id: str, params: dict[str, Any]
) -> int:
    async with db.uow(user_id) as uow:
        row = await photo_repo.lock_due_photo(uow, photo_id, params)
        if row is None:
            return 0
        for key in (row.object_key, row.upload_key):
            if key:
                await storage.delete(key)
        await photo_repo.delete(uow, photo_id)
        await uow.commit()
    return 1
