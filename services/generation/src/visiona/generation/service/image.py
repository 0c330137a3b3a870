"""Images: copied from the provider's (expiring) URLs into our storage, and the gallery.

Each output is streamed to a spooled file, decoded once to check it is the image it claims to
be (:func:`visiona.generation.domain.image.derive`), and stored as is, with its WebP thumbnail
and a BlurHash placeholder, where :func:`visiona.generation.domain.image.image_key_base` says
(``images/<owner key>/<generation>/<index>.<ext>``); its row is keyed by ``(generation,
index)`` so a repeated ingest stores nothing twice.
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO, cast

import httpx

from visiona.generation.domain.image import EXTENSIONS, OutputInvalid, StoredImage, derive
from visiona.generation.repository import image as images
from visiona.kit.db import Database
from visiona.kit.errors import NotFound
from visiona.kit.paging import Keyset, parse_id
from visiona.kit.storage import Storage

__all__ = ["Gallery", "ImageView", "OutputGone", "OutputInvalid", "StoredImage", "copy_output"]


class OutputGone(Exception):
    """The provider's file is not there (expired or never made): 404/410."""


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
            derive, cast(BinaryIO, spool), thumbnail_size
        )
        key = f"{key_base}.{EXTENSIONS[content_type]}"
        thumb_key = f"{key_base}.thumb.webp"
        spool.seek(0)
        # The image and its thumbnail go up side by side.
        await asyncio.gather(
            storage.put_stream(key, cast(BinaryIO, spool), length=size, content_type=content_type),
            storage.put_bytes(thumb_key, thumb, content_type="image/webp"),
        )
    return StoredImage(key, thumb_key, content_type, width, height, size, placeholder)


def _no_image(image_id: str) -> NotFound:
    return NotFound(f"no image {image_id}", code="image_not_found")


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


class Gallery:
    def __init__(self, db: Database, storage: Storage, url_ttl_s: int) -> None:
        self.db = db
        self.storage = storage
        self.ttl = timedelta(seconds=url_ttl_s)

    def view(self, row: Any) -> ImageView:
        ext = EXTENSIONS.get(row.content_type, "img")
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
            rows = await images.of_generation(uow, gen_id)
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
        keyset = Keyset.of(requested, token)
        model: uuid.UUID | None = None
        if model_id:
            try:
                model = uuid.UUID(model_id)
            except ValueError:
                return [], ""
        async with self.db.uow(user_id) as uow:
            rows = await images.page(uow, keyset, model_id=model, favourites_only=favourites_only)
        rows, token_out = keyset.cut(rows)
        return [self.view(r) for r in rows], token_out

    async def get(self, user_id: str, image_id: str) -> ImageView:
        iid = parse_id(image_id, "image")
        async with self.db.uow(user_id) as uow:
            row = await images.get(uow, iid)
        if row is None:
            raise _no_image(image_id)
        return self.view(row)

    async def set_favourite(self, user_id: str, image_id: str, favourite: bool) -> ImageView:
        iid = parse_id(image_id, "image")
        async with self.db.uow(user_id) as uow:
            if not await images.set_favourite(uow, iid, favourite):
                raise _no_image(image_id)
            await uow.commit()
        return await self.get(user_id, image_id)

    async def delete(self, user_id: str, image_id: str) -> None:
        iid = parse_id(image_id, "image")
        async with self.db.uow(user_id) as uow:
            keys = await images.delete(uow, iid)
            if keys is None:
                raise _no_image(image_id)
            await uow.commit()
        for key in keys:
            await self.storage.delete(key)
