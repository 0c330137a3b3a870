"""Export: training's part of ``gateway.export.requested.v1`` (one ``exports`` row per export,
written in the consumer's transaction; :class:`ExportJobs` does the rest).

The worker removes whatever a crashed attempt left under the part's prefix (so the counts
always match what is there), writes ``records/photos.json`` and ``records/models.json`` (every
column of the user's rows but job bookkeeping, storage keys and the provider's expiring weights
URL; the files' names in the export instead), copies the stored photos and the weights of
succeeded models server-side (a part can be large: the lease is renewed while it runs), then in
one transaction reports the part and deletes the row. Asked again, it writes the part again.
An erasure that takes the export meanwhile wins: the part is deleted again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from visiona.kit.db import Database, UnitOfWork
from visiona.kit.erasure import ExportPart
from visiona.kit.events import ExportRequestedV1, TrainingAccountExportedV1
from visiona.kit.jobs import RowJobs, Vanished
from visiona.kit.logging import get_logger
from visiona.kit.storage import Storage
from visiona.training.account._common import SERVICE
from visiona.training.config import TrainingSettings
from visiona.training.repository import account as repo
from visiona.training.repository.account import EXPORTS, ExportRecord

log = get_logger(__name__)


# Columns that are not the user's data: job bookkeeping, where we keep the files (they are in
# the export under files/), and the provider's expiring URL to the weights.
PHOTO_INTERNAL = frozenset({"upload_key", "upload_expires_at", "object_key"})
MODEL_INTERNAL = frozenset(
    {
        "work",
        "work_after",
        "work_attempts",
        "lease_until",
        "provider_seen_at",
        "launch_attempted_at",
        "weights_url",
        "dataset_key",
        "weights_key",
    }
)


def _public(row: Mapping[str, Any], internal: frozenset[str]) -> dict[str, Any]:
    return {name: value for name, value in row.items() if name not in internal}


class ExportJobs(RowJobs[ExportRecord]):
    rows = EXPORTS
    name = "exports"

    def __init__(self, db: Database, storage: Storage, settings: TrainingSettings) -> None:
        super().__init__(db, settings.job_settings())
        self.storage = storage

    async def requested(self, event: ExportRequestedV1, uow: UnitOfWork) -> None:
        """Record the export (the consumer's transaction); one in progress is not restarted."""
        await repo.add_export(uow, event.export_id, event.user_id)
        uow.after_commit(self.wake)
        log.info("training.export_requested", export_id=str(event.export_id))

    async def step_export(self, export: ExportRecord) -> None:
        part = ExportPart(self.storage, export.export_id, SERVICE)
        await self.storage.delete_prefix(part.prefix)
        async with self.db.uow(export.user_id) as uow:
            photo_rows = await repo.user_rows(uow, "photos")
            model_rows = await repo.user_rows(uow, "models")
        photo_records = []
        for photo in photo_rows:
            name = f"photos/{photo['id']}.jpg"
            copied = bool(photo["object_key"]) and await part.add_file_if_present(
                photo["object_key"], name
            )
            photo_records.append(
                _public(photo, PHOTO_INTERNAL) | {"file": f"files/{name}" if copied else None}
            )
        model_records = []
        for model in model_rows:
            name = f"models/{model['id']}/weights.tar"
            kept = model["status"] == "succeeded" and model["deleted_at"] is None
            copied = (
                kept
                and bool(model["weights_key"])
                and await part.add_file_if_present(model["weights_key"], name)
            )
            model_records.append(
                _public(model, MODEL_INTERNAL)
                | {"weights_file": f"files/{name}" if copied else None}
            )
        await part.add_records("photos", photo_records)
        await part.add_records("models", model_records)
        try:
            async with self.locked(export) as (uow, current):
                uow.emit(part.done(TrainingAccountExportedV1, current.user_id))
                await repo.delete_export(uow, current.id)
                await uow.commit()
        except Vanished:
            # The user's erasure took the export meanwhile: nothing of it may stay.
            await self.storage.delete_prefix(part.prefix)
            raise
        log.info(
            "training.export_written",
            export_id=str(export.export_id),
            objects=part.objects,
            bytes=part.bytes,
        )
        raise Vanished()
