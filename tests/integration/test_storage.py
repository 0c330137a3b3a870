"""The kit's S3 storage against a real S3 server (SeaweedFS): POST policies, presigned GET,
streaming I/O. Each test run gets its own bucket."""

from __future__ import annotations

import hashlib
import io
import uuid
from typing import Any, BinaryIO, cast

import httpx
import pytest

from visiona.kit.storage import PresignedPost, Storage

MAX_BYTES = 64 * 1024
PHOTO = "image/jpeg"


@pytest.fixture
def prefix() -> str:
    return f"uploads/{uuid.uuid4().hex}/"


def upload_policy(storage: Storage, prefix: str) -> PresignedPost:
    return storage.presigned_post(f"{prefix}photo.jpg", max_bytes=MAX_BYTES, content_type=PHOTO)


async def post_form(post: PresignedPost, fields: dict[str, str], body: bytes) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.post(
            post.url, data=fields, files={"file": ("photo.jpg", body, fields["Content-Type"])}
        )


async def test_presigned_post_accepts_an_allowed_upload(storage: Storage, prefix: str) -> None:
    post = upload_policy(storage, prefix)
    body = b"\xff\xd8" + b"x" * 1000

    response = await post_form(post, post.fields, body)

    assert response.is_success, response.text
    assert b"".join([c async for c in storage.get_stream(post.key)]) == body


async def test_presigned_post_rejects_a_file_larger_than_the_limit(
    storage: Storage, prefix: str
) -> None:
    post = upload_policy(storage, prefix)

    response = await post_form(post, post.fields, b"x" * (MAX_BYTES + 1))

    assert 400 <= response.status_code < 500, response.text
    assert "EntityTooLarge" in response.text
    assert not await storage.exists(post.key)


@pytest.mark.parametrize(
    "other",
    [
        "{prefix}photo.jpg.2",
        "{prefix}photo.jpg/more",
        "{prefix}another.jpg",
        "uploads/{x}/photo.jpg",
    ],
)
async def test_presigned_post_refuses_every_key_but_its_own(
    storage: Storage, prefix: str, other: str
) -> None:
    post = upload_policy(storage, prefix)
    key = other.format(prefix=prefix, x=uuid.uuid4().hex)

    response = await post_form(post, {**post.fields, "key": key}, b"x" * 100)

    assert 400 <= response.status_code < 500, response.text
    assert "AccessDenied" in response.text
    assert not await storage.exists(key)
    assert await storage.list_keys(prefix) == []


async def test_presigned_post_rejects_another_content_type(storage: Storage, prefix: str) -> None:
    post = upload_policy(storage, prefix)

    response = await post_form(post, {**post.fields, "Content-Type": "text/html"}, b"x" * 100)

    assert 400 <= response.status_code < 500, response.text
    assert "AccessDenied" in response.text
    assert not await storage.exists(post.key)


async def test_presigned_post_rejects_an_empty_file(storage: Storage, prefix: str) -> None:
    post = upload_policy(storage, prefix)

    response = await post_form(post, post.fields, b"")

    assert 400 <= response.status_code < 500, response.text
    assert not await storage.exists(post.key)


async def test_presigned_get_downloads_the_object(storage: Storage, prefix: str) -> None:
    key = f"{prefix}output.png"
    body = uuid.uuid4().bytes * 100
    await storage.put_bytes(key, body, content_type="image/png")

    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.get(storage.presigned_get(key))

    assert response.status_code == 200, response.text
    assert response.content == body


async def test_objects_are_private_without_a_signature(storage: Storage, prefix: str) -> None:
    key = f"{prefix}private.png"
    await storage.put_bytes(key, b"secret pixels", content_type="image/png")
    unsigned = storage.presigned_get(key).split("?", 1)[0]

    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.get(unsigned)

    assert response.status_code == 403, response.text
    assert b"secret pixels" not in response.content


class UnsizedStream(io.RawIOBase):
    """A non-seekable source of known content and unknown length, read in small pieces."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._at = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), 64 * 1024, len(self._data) - self._at)
        buffer[:n] = self._data[self._at : self._at + n]
        self._at += n
        return n


async def test_stream_of_unknown_length_round_trips(storage: Storage, prefix: str) -> None:
    key = f"{prefix}weights.safetensors"
    # More than one 10 MiB part, so the upload is a real multipart upload.
    data = hashlib.sha256(b"seed").digest() * (12 * 1024 * 1024 // 32 + 1234)

    await storage.put_stream(
        key, cast(BinaryIO, UnsizedStream(data)), length=-1, content_type="application/octet-stream"
    )
    chunks = [chunk async for chunk in storage.get_stream(key, chunk_size=1024 * 1024)]

    assert max(len(c) for c in chunks) <= 1024 * 1024
    assert hashlib.sha256(b"".join(chunks)).digest() == hashlib.sha256(data).digest()


async def test_deleted_object_no_longer_exists(storage: Storage, prefix: str) -> None:
    key = f"{prefix}photo.jpg"
    await storage.put_bytes(key, b"\xff\xd8", content_type=PHOTO)
    assert await storage.exists(key)

    await storage.delete(key)

    assert not await storage.exists(key)
