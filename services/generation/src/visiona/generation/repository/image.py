"""The ``images`` table: the outputs in our storage, one row per ``(generation, index)``, and
the gallery's reads (each image with its generation's final prompt)."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from visiona.generation.domain.generation import Generation
from visiona.generation.domain.image import StoredImage
from visiona.kit.db import UnitOfWork
from visiona.kit.paging import Keyset
from visiona.kit.rows import keyset_page, set_moved_keys

_COLUMNS = (
    "i.id, i.generation_id, i.model_id, i.idx, i.object_key, i.thumbnail_key, i.content_type, "
    "i.width, i.height, i.size_bytes, i.blurhash, i.favourite, i.created_at, g.final_prompt"
)
_FROM = "FROM images i JOIN generations g ON g.id = i.generation_id"


async def insert(uow: UnitOfWork, gen: Generation, index: int, image: StoredImage) -> None:
    """The stored output's row (once: a repeated ingest records nothing twice)."""
    await uow.session.execute(
        sa.text(
            "INSERT INTO images (id, user_id, generation_id, model_id, idx, "
            "object_key, thumbnail_key, content_type, width, height, size_bytes, "
            "blurhash) VALUES (:id, :u, :g, :m, :idx, :key, :thumb, :ct, :w, :h, "
            ":size, :bh) ON CONFLICT (generation_id, idx) DO NOTHING"
        ),
        {
            "id": uuid.uuid4(),
            "u": gen.user_id,
            "g": gen.id,
            "m": gen.model_id,
            "idx": index,
            "key": image.key,
            "thumb": image.thumbnail_key,
            "ct": image.content_type,
            "w": image.width,
            "h": image.height,
            "size": image.size_bytes,
            "bh": image.blurhash,
        },
    )


async def stored_count(uow: UnitOfWork, gen_id: uuid.UUID) -> int:
    count = (
        await uow.session.execute(
            sa.text("SELECT count(*) FROM images WHERE generation_id = :g"), {"g": gen_id}
        )
    ).scalar_one()
    return int(count)


async def stored_indices(uow: UnitOfWork, gen_id: uuid.UUID) -> set[int]:
    rows = await uow.session.execute(
        sa.text("SELECT idx FROM images WHERE generation_id = :g"), {"g": gen_id}
    )
    return {int(r[0]) for r in rows}


async def keys_of_generation(uow: UnitOfWork, gen_id: uuid.UUID) -> set[str]:
    """Every object key (image and thumbnail) the generation's rows name."""
    rows = await uow.session.execute(
        sa.text("SELECT object_key, thumbnail_key FROM images WHERE generation_id = :g"),
        {"g": gen_id},
    )
    return {key for row in rows.all() for key in row}


async def of_generation(uow: UnitOfWork, gen_id: uuid.UUID) -> list[Any]:
    rows = await uow.session.execute(
        sa.text(f"SELECT {_COLUMNS} {_FROM} WHERE i.generation_id = :g ORDER BY i.idx"),
        {"g": gen_id},
    )
    return list(rows.all())


async def page(
    uow: UnitOfWork, keyset: Keyset, *, model_id: uuid.UUID | None, favourites_only: bool
) -> list[Any]:
    """A page of images, newest first (of one model, or favourites only, when asked)."""
    where: list[str] = []
    params: dict[str, Any] = {}
    if model_id is not None:
        where.append("i.model_id = :model")
        params["model"] = model_id
    if favourites_only:
        where.append("i.favourite")
    select = f"SELECT {_COLUMNS} {_FROM}"
    return await keyset_page(uow, select, keyset, where=where, params=params, alias="i")


async def get(uow: UnitOfWork, image_id: uuid.UUID) -> Any | None:
    return (
        await uow.session.execute(
            sa.text(f"SELECT {_COLUMNS} {_FROM} WHERE i.id = :id"), {"id": image_id}
        )
    ).first()


async def set_favourite(uow: UnitOfWork, image_id: uuid.UUID, favourite: bool) -> bool:
    """False when there is no such image."""
    updated = (
        await uow.session.execute(
            sa.text("UPDATE images SET favourite = :f WHERE id = :id RETURNING id"),
            {"f": favourite, "id": image_id},
        )
    ).first()
    return updated is not None


async def delete(uow: UnitOfWork, image_id: uuid.UUID) -> tuple[str, str] | None:
    """Delete the image's row; its object and thumbnail keys (None when there was none)."""
    row = (
        await uow.session.execute(
            sa.text("DELETE FROM images WHERE id = :id RETURNING object_key, thumbnail_key"),
            {"id": image_id},
        )
    ).first()
    return None if row is None else (row.object_key, row.thumbnail_key)


# -- images stored before owner keys (visiona.kit.owners) ----------------------------------------


async def generations_on_old_keys(uow: UnitOfWork, prefix: str) -> list[tuple[uuid.UUID, bool]]:
    """The generations (and whether each finished) with an image or thumbnail under
    ``prefix``."""
    rows = await uow.session.execute(
        sa.text(
            "SELECT DISTINCT g.id, g.finished_at IS NOT NULL AS finished FROM images i "
            "JOIN generations g ON g.id = i.generation_id "
            "WHERE starts_with(i.object_key, :prefix) OR starts_with(i.thumbnail_key, :prefix)"
        ),
        {"prefix": prefix},
    )
    return [(r.id, r.finished) for r in rows]


async def keys_for_update(uow: UnitOfWork, gen_id: uuid.UUID) -> list[Any]:
    """The generation's image rows (``id, object_key, thumbnail_key``), locked."""
    rows = await uow.session.execute(
        sa.text(
            "SELECT id, object_key, thumbnail_key FROM images WHERE generation_id = :g FOR UPDATE"
        ),
        {"g": gen_id},
    )
    return list(rows.all())


async def rekey(
    uow: UnitOfWork, image_id: uuid.UUID, object_key: str | None, thumbnail_key: str | None
) -> None:
    """Point the row at moved objects (None keeps a key as it is)."""
    await set_moved_keys(
        uow, "images", image_id, object_key=object_key, thumbnail_key=thumbnail_key
    )
