"""Moving training's objects stored before owner keys (``<top>/<user id>/…``) to their
owner-key form (visiona.kit.owners), row by row: under the row's lock, copy the object, point
the row at the copy, commit, then delete the old object. A crash before the commit leaves a
copy the next run makes again; after it, an old object the owner's final prefix deletion
removes. Rows something else may be using wait for a later run: photos while one of the user's
models builds its dataset from them, models while a job step is due on them.

Upload slots still ``uploading`` keep their key (the client's policy names it); once completed
or abandoned their object is gone, and the upload sweep removes anything else under
``uploads/``.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from visiona.kit.db import Database
from visiona.kit.owners import move_object, rekeyed
from visiona.kit.storage import Storage

TOPS = ("photos", "datasets", "models")

_OLD_PHOTOS = sa.text(
    "SELECT id FROM photos WHERE starts_with(object_key, :photos) "
    "OR (status <> 'uploading' AND starts_with(upload_key, :uploads))"
)
_OLD_MODELS = sa.text(
    "SELECT id FROM models WHERE starts_with(dataset_key, :datasets) "
    "OR starts_with(weights_key, :models)"
)
_PREPARING = sa.text(
    "SELECT EXISTS (SELECT 1 FROM models WHERE status = 'preparing' AND deleted_at IS NULL)"
)


# Steps that never read a model's objects: a ready model always has its next version check
# due, and waiting for it would never move the model.
_READS_NO_OBJECT = frozenset({"verify"})


class TrainingLegacyKeys:
    def __init__(self, db: Database, storage: Storage) -> None:
        self.db = db
        self.storage = storage

    async def move_rows(self, user_id: str, owner: str) -> bool:
        """Move what the user's rows name; True once nothing is left on an old key."""
        if "/" in user_id:
            return True  # never stored under a prefix of its own: nothing to move
        prefixes = {top: f"{top}/{user_id}/" for top in ("photos", "uploads", "datasets", "models")}
        async with self.db.uow(user_id) as uow:
            preparing = bool((await uow.session.execute(_PREPARING)).scalar())
            photos = list((await uow.session.execute(_OLD_PHOTOS, prefixes)).scalars())
            models = list((await uow.session.execute(_OLD_MODELS, prefixes)).scalars())
        done = not preparing or not photos
        if not preparing:
            for photo_id in photos:
                await self._move_photo(user_id, owner, photo_id)
        for model_id in models:
            done = await self._move_model(user_id, owner, model_id) and done
        return done

    async def _move_photo(self, user_id: str, owner: str, photo_id: uuid.UUID) -> None:
        async with self.db.uow(user_id) as uow:
            row = (
                await uow.session.execute(
                    sa.text(
                        "SELECT status, object_key, upload_key FROM photos WHERE id = :id "
                        "FOR UPDATE"
                    ),
                    {"id": photo_id},
                )
            ).first()
            if row is None:
                return
            old = row.object_key
            new = rekeyed(old, user_id, owner)
            upload = rekeyed(row.upload_key, user_id, owner) if row.status != "uploading" else None
            if new:
                await move_object(self.storage, old, new)
            await uow.session.execute(
                sa.text(
                    "UPDATE photos SET object_key = coalesce(:new, object_key), "
                    "upload_key = coalesce(:upload, upload_key) WHERE id = :id"
                ),
                {"new": new, "upload": upload, "id": photo_id},
            )
            await uow.commit()
        if new:
            await self.storage.delete(old)

    async def _move_model(self, user_id: str, owner: str, model_id: uuid.UUID) -> bool:
        async with self.db.uow(user_id) as uow:
            row = (
                await uow.session.execute(
                    sa.text(
                        "SELECT work, dataset_key, weights_key FROM models WHERE id = :id "
                        "FOR UPDATE"
                    ),
                    {"id": model_id},
                )
            ).first()
            if row is None:
                return True
            if row.work is not None and row.work not in _READS_NO_OBJECT:
                return False  # a step is due on it: it may be reading these keys
            moves = {
                column: (old, new)
                for column, old in (
                    ("dataset_key", row.dataset_key),
                    ("weights_key", row.weights_key),
                )
                if (new := rekeyed(old, user_id, owner))
            }
            for old, new in moves.values():
                await move_object(self.storage, old, new)
            await uow.session.execute(
                sa.text(
                    "UPDATE models SET dataset_key = coalesce(:dataset, dataset_key), "
                    "weights_key = coalesce(:weights, weights_key) WHERE id = :id"
                ),
                {
                    "dataset": moves.get("dataset_key", (None, None))[1],
                    "weights": moves.get("weights_key", (None, None))[1],
                    "id": model_id,
                },
            )
            await uow.commit()
        for old, _ in moves.values():
            await self.storage.delete(old)
        return True
