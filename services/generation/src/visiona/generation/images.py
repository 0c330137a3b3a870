"""Images: copied from the provider's (expiring) URLs into our storage, and the gallery.

Each output is streamed to a spooled file, decoded once to check it is the image it claims to
be, stored as is under ``images/<owner key>/<generation>/<index>.<ext>``, with a WebP thumbnail and
a BlurHash placeholder; its row is keyed by ``(generation, index)`` so a repeated ingest stores
nothing twice.
"""

from __future__ import annotations

import asyncio
import io
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO, cast

import blurhash
import httpx
import sqlalchemy as sa
from PIL import Image, ImageOps

from visiona.generation.domain import OUTPUT_FORMATS
from visiona.kit.db import Database
from visiona.kit.errors import NotFound
from visiona.kit.logging import get_logger
from visiona.kit.paging import decode_cursor, encode_cursor, page_size, parse_id
from visiona.kit.storage import Storage

log = get_logger(__name__)

_PILLOW_TYPES = {"WEBP": "image/webp", "JPEG": "image/jpeg", "PNG": "image/png"}
_EXTENSIONS = {v: k for k, v in OUTPUT_FORMATS.items()}


class OutputGone(Exception):
    """The provider's file is not there (expired or never made): 404/410."""


class OutputInvalid(Exception):
    """The provider's file is not an image we can store."""


@dataclass(frozen=True)
class StoredImage:
    key: str
    thumbnail_key: str
    content_type: str
    width: int
    height: int
    size_bytes: int
    blurhash: str


def _derive(spool: BinaryIO, thumbnail_size: int) -> tuple[str, int, int, bytes, str]:
    """Content type, size, a WebP thumbnail and a BlurHash, from one decode."""
    spool.seek(0)
    try:
        with Image.open(spool) as img:
            content_type = _PILLOW_TYPES.get(img.format or "")
            if content_type is None:
                raise OutputInvalid(f"unexpected image format {img.format}")
            img.load()
            rgb = ImageOps.exif_transpose(img).convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise OutputInvalid("the provider's file is not a readable image") from exc
    width, height = rgb.size
    thumb = rgb.copy()
    thumb.thumbnail((thumbnail_size, thumbnail_size))
    out = io.BytesIO()
    thumb.save(out, "WEBP", quality=80, method=4)
    tiny = rgb.copy()
    tiny.thumbnail((64, 64))
    placeholder = blurhash.encode(tiny, x_components=4, y_components=3)
    return content_type, width, height, out.getvalue(), str(placeholder)


async def copy_output(
    http: httpx.AsyncClient,
    storage: Storage,
    url: str,
    *,
    key_base: str,
    max_bytes: int,
    thumbnail_size: int,
) -> StoredImage:
    """Stream one output into our storage; raises OutputGone / OutputInvalid / httpx errors."""
    with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as spool:
        async with http.stream("GET", url) as response:
            if response.status_code in (404, 410):
                raise OutputGone(f"the output answered {response.status_code}")
            response.raise_for_status()
            async for chunk in response.aiter_bytes(256 * 1024):
                spool.write(chunk)
                if spool.tell() > max_bytes:
                    raise OutputInvalid(f"the output is over {max_bytes} bytes")
        size = spool.tell()
        content_type, width, height, thumb, placeholder = await asyncio.to_thread(
            _derive, cast(BinaryIO, spool), thumbnail_size
        )
        key = f"{key_base}.{_EXTENSIONS[content_type]}"
        thumb_key = f"{key_base}.thumb.webp"
        spool.seek(0)
        # The image and its thumbnail go up side by side.
        await asyncio.gather(
            storage.put_stream(key, cast(BinaryIO, spool), length=size, content_type=content_type),
            storage.put_bytes(thumb_key, thumb, content_type="image/webp"),
        )
    return StoredImage(key, thumb_key, content_type, width, height, size, placeholder)


@dataclass(frozen=True)
class ImageView:
    id: uuid.UUID
    generation_id: uuid.UUID
    model_id: uuid.UUID
    index: int
    content_type: str
    width: int
    height: int
    size_bytes: int
    blurhash: str
    favourite: bool
    created_at: datetime
    url: str
    thumbnail_url: str
    download_url: str
    urls_expire_at: datetime
    prompt: str


_COLUMNS = (
    "i.id, i.generation_id, i.model_id, i.idx, i.object_key, i.thumbnail_key, i.content_type, "
    "i.width, i.height, i.size_bytes, i.blurhash, i.favourite, i.created_at, g.final_prompt"
)
_FROM = "FROM images i JOIN generations g ON g.id = i.generation_id"


class Gallery:
    def __init__(self, db: Database, storage: Storage, url_ttl_s: int) -> None:
        self.db = db
        self.storage = storage
        self.ttl = timedelta(seconds=url_ttl_s)

    def view(self, row: Any) -> ImageView:
        ext = _EXTENSIONS.get(row.content_type, "img")
        filename = f"visiona-{row.id}.{ext}"
        return ImageView(
            id=row.id,
            generation_id=row.generation_id,
            model_id=row.model_id,
            index=row.idx,
            content_type=row.content_type,
            width=row.width,
            height=row.height,
            size_bytes=row.size_bytes,
            blurhash=row.blurhash,
            favourite=row.favourite,
            created_at=row.created_at,
            url=self.storage.presigned_get(row.object_key, expires=self.ttl),
            thumbnail_url=self.storage.presigned_get(row.thumbnail_key, expires=self.ttl),
            download_url=self.storage.presigned_get(
                row.object_key,
                expires=self.ttl,
                response_headers={
                    "response-content-disposition": f'attachment; filename="{filename}"'
                },
            ),
            urls_expire_at=datetime.now(UTC) + self.ttl,
            prompt=row.final_prompt,
        )

    async def of_generation(self, user_id: str, gen_id: uuid.UUID) -> list[ImageView]:
        async with self.db.uow(user_id) as uow:
            rows = (
                await uow.session.execute(
                    sa.text(f"SELECT {_COLUMNS} {_FROM} WHERE i.generation_id = :g ORDER BY i.idx"),
                    {"g": gen_id},
                )
            ).all()
        return [self.view(r) for r in rows]

    async def page(
        self,
        user_id: str,
        requested: int,
        token: str,
        *,
        model_id: str | None,
        favourites_only: bool,
    ) -> tuple[list[ImageView], str]:
        limit = page_size(requested)
        after = decode_cursor(token)
        where: list[str] = ["TRUE"]
        params: dict[str, Any] = {"limit": limit + 1}
        if after is not None:
            where.append("(i.created_at, i.id) < (:at, :id)")
            params |= {"at": after[0], "id": after[1]}
        if model_id:
            try:
                params["model"] = uuid.UUID(model_id)
            except ValueError:
                return [], ""
            where.append("i.model_id = :model")
        if favourites_only:
            where.append("i.favourite")
        async with self.db.uow(user_id) as uow:
            rows = (
                await uow.session.execute(
                    sa.text(
                        f"SELECT {_COLUMNS} {_FROM} WHERE {' AND '.join(where)} "
                        "ORDER BY i.created_at DESC, i.id DESC LIMIT :limit"
                    ),
                    params,
                )
            ).all()
        more = len(rows) > limit
        rows = rows[:limit]
        token_out = encode_cursor(rows[-1].created_at, rows[-1].id) if more else ""
        return [self.view(r) for r in rows], token_out

    async def _row(self, user_id: str, image_id: str) -> Any:
        iid = parse_id(image_id, "image")
        async with self.db.uow(user_id) as uow:
            row = (
                await uow.session.execute(
                    sa.text(f"SELECT {_COLUMNS} {_FROM} WHERE i.id = :id"), {"id": iid}
                )
            ).first()
        if row is None:
            raise NotFound(f"no image {image_id}", code="image_not_found")
        return row

    async def get(self, user_id: str, image_id: str) -> ImageView:
        return self.view(await self._row(user_id, image_id))

    async def set_favourite(self, user_id: str, image_id: str, favourite: bool) -> ImageView:
        iid = parse_id(image_id, "image")
        async with self.db.uow(user_id) as uow:
            updated = (
                await uow.session.execute(
                    sa.text("UPDATE images SET favourite = :f WHERE id = :id RETURNING id"),
                    {"f": favourite, "id": iid},
                )
            ).first()
            if updated is None:
                raise NotFound(f"no image {image_id}", code="image_not_found")
            await uow.commit()
        return await self.get(user_id, image_id)

    async def delete(self, user_id: str, image_id: str) -> None:
        iid = parse_id(image_id, "image")
        async with self.db.uow(user_id) as uow:
            row = (
                await uow.session.execute(
                    sa.text(
                        "DELETE FROM images WHERE id = :id RETURNING object_key, thumbnail_key"
                    ),
                    {"id": iid},
                )
            ).first()
            if row is None:
                raise NotFound(f"no image {image_id}", code="image_not_found")
            await uow.commit()
        for key in (row.object_key, row.thumbnail_key):
            await self.storage.delete(key)
