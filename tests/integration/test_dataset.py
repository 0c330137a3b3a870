"""Training datasets assembled from S3 into S3 as a streamed zip (SeaweedFS, real multipart)."""

from __future__ import annotations

import hashlib
import io
import os
import uuid
import zipfile

import pytest

from visiona.kit.storage import Storage
from visiona.training.service.dataset import PART_SIZE, DatasetError, assemble


async def put_photos(storage: Storage, sizes: list[int]) -> list[tuple[str, str, bytes]]:
    prefix = f"photos/{uuid.uuid4().hex}"
    photos = []
    for i, size in enumerate(sizes, 1):
        body = os.urandom(size)
        key = f"{prefix}/{i}.jpg"
        await storage.put_bytes(key, body, content_type="image/jpeg")
        photos.append((f"{i:02d}.jpg", key, body))
    return photos


def missing(storage: Storage, key: str) -> bool:
    try:
        storage.client.stat_object(storage.bucket, key)
    except Exception:
        return True
    return False


async def test_photos_are_zipped_in_order_across_several_multipart_parts(
    storage: Storage,
) -> None:
    # More than two parts' worth, with objects that straddle the part boundaries.
    sizes = [3 * 1024 * 1024 + 17, 5 * 1024 * 1024, 7 * 1024 * 1024 + 1, 1, 4 * 1024 * 1024]
    assert sum(sizes) > 2 * PART_SIZE
    photos = await put_photos(storage, sizes)
    key = f"datasets/{uuid.uuid4().hex}.zip"

    built = await assemble(storage, [(name, k) for name, k, _ in photos], key)

    data = storage.client.get_object(storage.bucket, key).read()
    assert built.size == len(data) and built.members == len(photos)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        assert zf.namelist() == [name for name, _, _ in photos]
        for name, _, body in photos:
            assert hashlib.sha256(zf.read(name)).digest() == hashlib.sha256(body).digest()


async def test_a_missing_photo_stores_no_dataset_at_all(storage: Storage) -> None:
    photos = await put_photos(storage, [6 * 1024 * 1024, 6 * 1024 * 1024])
    members = [(name, k) for name, k, _ in photos]
    members.insert(1, ("gone.jpg", f"photos/{uuid.uuid4().hex}/nothing.jpg"))
    key = f"datasets/{uuid.uuid4().hex}.zip"

    with pytest.raises(DatasetError, match=r"gone\.jpg"):
        await assemble(storage, members, key)

    assert missing(storage, key)  # never a truncated zip


async def test_no_photos_is_an_error(storage: Storage) -> None:
    with pytest.raises(DatasetError):
        await assemble(storage, [], f"datasets/{uuid.uuid4().hex}.zip")
