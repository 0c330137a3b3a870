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

from visiona.kit.owners import LegacyRows, move_object, rekeyed
from visiona.training.repository import model as model_repo
from visiona.training.repository import photo as photo_repo

TOPS = ("photos", "datasets", "models")


# Steps that never read a model's objects: a ready model always has its next version check
# due, and waiting for it would never move the model.
_READS_NO_OBJECT = frozenset({"verify"})


class TrainingLegacyKeys(LegacyRows):
    tops = TOPS

    async def move_owned(self, user_id: str, owner: str) -> bool:
        prefixes = {top: f"{top}/{user_id}/" for top in ("photos", "uploads", "datasets", "models")}
        async with self.db.uow(user_id) as uow:
            preparing = await model_repo.any_preparing(uow)
            photos = await photo_repo.on_legacy_keys(uow, prefixes)
            models = await model_repo.on_legacy_keys(uow, prefixes)
        done = not preparing or not photos
        if not preparing:
            for photo_id in photos:
                await self._move_photo(user_id, owner, photo_id)
        for model_id in models:
            done = await self._move_model(user_id, owner, model_id) and done
        return done

    async def _move_photo(self, user_id: str, owner: str, photo_id: uuid.UUID) -> None:
        async with self.db.uow(user_id) as uow:
            row = await photo_repo.lock_keys(uow, photo_id)
            if row is None:
                return
            old = row.object_key
            new = rekeyed(old, user_id, owner)
            upload = rekeyed(row.upload_key, user_id, owner) if row.status != "uploading" else None
            if new:
                await move_object(self.storage, old, new)
            await photo_repo.set_keys(uow, photo_id, new, upload)
            await uow.commit()
        if new:
            await self.storage.delete(old)

    async def _move_model(self, user_id: str, owner: str, model_id: uuid.UUID) -> bool:
        async with self.db.uow(user_id) as uow:
            row = await model_repo.lock_keys(uow, model_id)
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
            await model_repo.set_keys(
                uow,
                model_id,
                moves.get("dataset_key", (None, None))[1],
                moves.get("weights_key", (None, None))[1],
            )
            await uow.commit()
        for old, _ in moves.values():
            await self.storage.delete(old)
        return True
