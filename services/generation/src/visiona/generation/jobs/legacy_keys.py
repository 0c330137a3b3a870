"""Moving generation's images stored before owner keys (``images/<user id>/…``) to their
owner-key form (visiona.kit.owners), generation by generation: under the generation's lock
(which the object sweep takes too), copy each image and thumbnail, point the rows at the
copies, commit, then delete the old objects. A crash before the commit leaves copies the next
run makes again (the sweep, which sees them unnamed, may remove them first: they are made
again); after it, old objects the owner's final prefix deletion removes. A generation that has
not finished (its ingest may be storing) waits for a later run.
"""

from __future__ import annotations

import uuid

from visiona.generation.repository import generation as generations
from visiona.generation.repository import image as images
from visiona.kit.owners import LegacyRows, move_object, rekeyed

TOPS = ("images",)


class GenerationLegacyKeys(LegacyRows):
    tops = TOPS

    async def move_owned(self, user_id: str, owner: str) -> bool:
        async with self.db.uow(user_id) as uow:
            found = await images.generations_on_old_keys(uow, f"images/{user_id}/")
        done = True
        for generation_id, finished in found:
            if not finished:
                done = False
                continue
            await self._move_generation(user_id, owner, generation_id)
        return done

    async def _move_generation(self, user_id: str, owner: str, generation_id: uuid.UUID) -> None:
        moved: list[str] = []
        async with self.db.uow(user_id) as uow:
            await generations.lock_id(uow, generation_id)
            rows = await images.keys_for_update(uow, generation_id)
            for image in rows:
                new = {}
                for column in ("object_key", "thumbnail_key"):
                    old = getattr(image, column)
                    if target := rekeyed(old, user_id, owner):
                        await move_object(self.storage, old, target)
                        new[column] = target
                        moved.append(old)
                if new:
                    await images.rekey(
                        uow, image.id, new.get("object_key"), new.get("thumbnail_key")
                    )
            await uow.commit()
        for old in moved:
            await self.storage.delete(old)
