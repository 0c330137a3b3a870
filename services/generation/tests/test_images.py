"""Copying an output into our storage: its real type, its size limit, an upright size, a WebP
thumbnail that fits, a BlurHash (in memory), and what lands in S3 (the session's SeaweedFS;
the provider's CDN is an httpx mock transport)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import blurhash
import httpx
import pytest
from PIL import Image

from visiona.generation.domain.image import OUTPUT_FORMATS
from visiona.generation.domain.image import derive as derive_spool
from visiona.generation.service.image import (
    OutputGone,
    OutputInvalid,
    StoredImage,
    copy_output,
)
from visiona.kit.storage import Storage

ORIENTATION = 0x0112
KEY_PREFIX = "images/user_1/6f1c2a4e-9b8d-4c3f-a7e5-1d2b3c4d5e6f/"
KEY_BASE = f"{KEY_PREFIX}0"


def encode(size: tuple[int, int], fmt: str, **params: Any) -> bytes:
    img = Image.new("RGB", size, (200, 80, 40))
    # A second colour, so the BlurHash has something to describe.
    img.paste((20, 60, 220), (0, 0, size[0] // 2, size[1]))
    out = io.BytesIO()
    img.save(out, format=fmt, **params)
    return out.getvalue()


def derive(data: bytes, thumbnail_size: int = 512) -> tuple[str, int, int, bytes, str]:
    return derive_spool(io.BytesIO(data), thumbnail_size)


async def copy(
    respond: httpx.Response, storage: Storage, *, max_bytes: int = 1 << 20
) -> StoredImage:
    """Copy an output the provider's CDN answers with ``respond`` into real S3."""
    transport = httpx.MockTransport(lambda request: respond)
    async with httpx.AsyncClient(transport=transport) as http:
        return await copy_output(
            http,
            storage,
            "https://replicate.delivery/out-0.webp",
            key_base=KEY_BASE,
            max_bytes=max_bytes,
            thumbnail_size=256,
        )


async def stored(storage: Storage) -> dict[str, bytes]:
    keys = await storage.list_keys(KEY_PREFIX)
    return {key: b"".join([c async for c in storage.get_stream(key)]) for key, _ in keys}


@pytest.fixture
async def bucket(storage: Storage) -> AsyncIterator[Storage]:
    """The module's bucket, with nothing under the test's key afterwards."""
    yield storage
    await storage.delete_prefix(KEY_PREFIX)


@pytest.mark.parametrize(("fmt", "ext"), [("WEBP", "webp"), ("JPEG", "jpg"), ("PNG", "png")])
def test_each_output_format_is_recognised_by_its_content(fmt: str, ext: str) -> None:
    content_type, width, height, _, _ = derive(encode((320, 200), fmt))
    assert content_type == OUTPUT_FORMATS[ext]
    assert (width, height) == (320, 200)


def test_the_thumbnail_is_webp_and_fits_its_longest_side_keeping_the_shape() -> None:
    _, _, _, thumb, _ = derive(encode((1600, 900), "PNG"), thumbnail_size=512)
    with Image.open(io.BytesIO(thumb)) as img:
        assert img.format == "WEBP"
        assert img.size == (512, 288)


def test_a_small_image_is_never_enlarged_for_its_thumbnail() -> None:
    _, _, _, thumb, _ = derive(encode((300, 200), "PNG"), thumbnail_size=512)
    with Image.open(io.BytesIO(thumb)) as img:
        assert img.size == (300, 200)


def test_a_sideways_photo_is_measured_and_thumbnailed_upright() -> None:
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # rotate 90° clockwise to view
    _, width, height, thumb, _ = derive(encode((400, 200), "JPEG", exif=exif), thumbnail_size=100)
    assert (width, height) == (200, 400)
    with Image.open(io.BytesIO(thumb)) as img:
        assert img.size == (50, 100)


def test_the_placeholder_is_a_valid_4_by_3_blurhash() -> None:
    _, _, _, _, placeholder = derive(encode((320, 200), "WEBP"))
    assert blurhash.is_valid_blurhash(placeholder)
    # 1 size character, 1 maximum, 4 for the average colour, 2 for each of the 11 others.
    assert len(placeholder) == 6 + 2 * (4 * 3 - 1)


@pytest.mark.parametrize(
    "data",
    [
        encode((64, 64), "GIF"),
        b"<html>not an image</html>",
        encode((640, 480), "PNG")[:200],
    ],
    ids=["gif", "not-an-image", "truncated"],
)
def test_a_file_that_is_not_a_whole_image_of_an_output_format_is_refused(data: bytes) -> None:
    with pytest.raises(OutputInvalid):
        derive(data)


async def test_an_output_is_stored_as_is_under_the_extension_of_what_it_really_is(
    bucket: Storage,
) -> None:
    png = encode((640, 360), "PNG")
    image = await copy(httpx.Response(200, content=png), bucket)
    # The URL says .webp; the bytes are a PNG, and the key says so.
    assert image.key == f"{KEY_BASE}.png"
    assert image.thumbnail_key == f"{KEY_BASE}.thumb.webp"
    assert (image.content_type, image.size_bytes) == ("image/png", len(png))
    assert (image.width, image.height) == (640, 360)
    objects = await stored(bucket)
    assert set(objects) == {image.key, image.thumbnail_key}
    assert objects[image.key] == png
    with Image.open(io.BytesIO(objects[image.thumbnail_key])) as thumb:
        assert thumb.format == "WEBP"


@pytest.mark.parametrize("status", [404, 410])
async def test_an_expired_output_is_gone_and_nothing_is_stored(
    bucket: Storage, status: int
) -> None:
    with pytest.raises(OutputGone):
        await copy(httpx.Response(status), bucket)
    assert await stored(bucket) == {}


async def test_a_server_error_is_raised_as_such_for_a_retry(bucket: Storage) -> None:
    with pytest.raises(httpx.HTTPStatusError):
        await copy(httpx.Response(503), bucket)
    assert await stored(bucket) == {}


async def test_an_output_over_the_size_limit_is_refused_and_nothing_is_stored(
    bucket: Storage,
) -> None:
    png = encode((640, 360), "PNG")
    with pytest.raises(OutputInvalid):
        await copy(httpx.Response(200, content=png), bucket, max_bytes=len(png) - 1)
    assert await stored(bucket) == {}
    image = await copy(httpx.Response(200, content=png), bucket, max_bytes=len(png))
    assert image.size_bytes == len(png)
