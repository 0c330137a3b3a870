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

import sqlalchemy as sa

from visiona.kit.db import Database
from visiona.kit.owners import move_object, rekeyed
from visiona.kit.storage import Storage

TOPS = ("images",)

_OLD = sa.text(
    "SELECT DISTINCT g.id, g.finished_at IS NOT NULL AS finished FROM images i "
    "JOIN generations g ON g.id = i.generation_id "
    "WHERE starts_with(i.object_key, :prefix) OR starts_with(i.thumbnail_key, :prefix)"
)


class GenerationLegacyKeys:
    def __init__(self, db: Database, storage: Storage) -> None:
        self.db = db
        self.storage = storage

    async def move_rows(self, user_id: str, owner: str) -> bool:
        """Move what the user's image rows name; True once nothing is left on an old key."""
        if "/" in user_id:
            return True  # never stored under a prefix of its own: nothing to move
        async with self.db.uow(user_id) as uow:
            found = (await uow.session.execute(_OLD, {"prefix": f"images/{user_id}/"})).all()
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
            await uow.session.execute(
                sa.text("SELECT 1 FROM generations WHERE id = :g FOR UPDATE"), {"g": generation_id}
            )
            images = (
                await uow.session.execute(
                    sa.text(
                        "SELECT id, object_key, thumbnail_key FROM images "
                        "WHERE generation_id = :g FOR UPDATE"
                    ),
                    {"g": generation_id},
                )
            ).all()
            for image in images:
                new = {}
                for column in ("object_key", "thumbnail_key"):
                    old = getattr(image, column)
                    if target := rekeyed(old, user_id, owner):
                        await move_object(self.storage, old, target)
                        new[column] = target
                        moved.append(old)
                if new:
                    await uow.session.execute(
                        sa.text(
                            "UPDATE images SET object_key = coalesce(:object_key, object_key), "
                            "thumbnail_key = coalesce(:thumbnail_key, thumbnail_key) "
                            "WHERE id = :id"
                        ),
                        {
                            "object_key": new.get("object_key"),
                            "thumbnail_key": new.get("thumbnail_key"),
                            "id": image.id,
                        },
                    )
            await uow.commit()
        for old in moved:
            await self.storage.delete(old)
