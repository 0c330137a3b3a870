"""Images, free of I/O: the formats we store, where an image is stored, and what one decode of
a provider's output tells (its real type, size, a WebP thumbnail and a BlurHash placeholder).

An output is stored as is under ``images/<owner key>/<generation>/<index>.<ext>``, with its
thumbnail beside it; its row is keyed by ``(generation, index)`` so a repeated ingest stores
nothing twice.
"""

from __future__ import annotations

import io
import re
import uuid
from dataclasses import dataclass
from typing import BinaryIO

import blurhash
from PIL import Image, ImageOps

OUTPUT_FORMATS = {"webp": "image/webp", "jpg": "image/jpeg", "png": "image/png"}
EXTENSIONS = {v: k for k, v in OUTPUT_FORMATS.items()}
_PILLOW_TYPES = {"WEBP": "image/webp", "JPEG": "image/jpeg", "PNG": "image/png"}


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


def derive(spool: BinaryIO, thumbnail_size: int) -> tuple[str, int, int, bytes, str]:
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


OWNER_KEY = re.compile(r"[0-9a-f]{32}")


def image_key_base(owner: str, generation_id: uuid.UUID, index: int) -> str:
    """Where an output and its thumbnail are stored, less the extension: under the prefix of
    the user's opaque owner key (:func:`owner_images_prefix`, visiona.kit.owners), which
    erasure deletes. No user id in a key: listings and access logs name nobody."""
    return f"{owner_images_prefix(owner)}{generation_id}/{index}"


def owner_images_prefix(owner: str) -> str:
    """The prefix holding every image of the user whose owner key is ``owner``."""
    if not OWNER_KEY.fullmatch(owner):
        raise ValueError("not an owner key")
    return f"images/{owner}/"
