"""Upload slots against a real S3 (SeaweedFS) and the training schema: a slot's policy stores
its one key and nothing else, a slot posted again after it was completed or deleted keeps
nothing, and the upload sweep removes whatever under ``uploads/`` no open slot owns.

The training service's code runs in process, as its app role (row-level security applies).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.schemas import SchemaDb
from visiona.cli.samples import FACE_INDICES, face_photo
from visiona.kit.db import Database
from visiona.kit.storage import Storage
from visiona.training.config import TrainingSettings
from visiona.training.jobs.upload_sweep import UploadSweep
from visiona.training.service.photo import UPLOADS_ROOT, PhotoService, UploadSlot


@pytest.fixture
async def db(training_schema: SchemaDb) -> AsyncIterator[Database]:
    async with training_schema.opened() as db:
        yield db


@pytest.fixture
def photos(db: Database, storage: Storage) -> PhotoService:
    return PhotoService(db, storage, TrainingSettings(upload_max_bytes=4 * 1024 * 1024))


def new_user() -> str:
    return f"user_{uuid.uuid4().hex[:10]}"


async def post(slot: UploadSlot, body: bytes, **fields: str) -> httpx.Response:
    """What a browser does with the slot (``fields`` override the policy's form fields)."""
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.post(
            slot.post.url,
            data={**slot.post.fields, **fields},
            files={"file": ("photo", body, slot.post.fields["Content-Type"])},
        )


async def sweep_all(db: Database, storage: Storage, batch: int = 100) -> int:
    """Sweep once over every key under ``uploads/``; the objects removed."""
    sweep = UploadSweep(db, storage, batch=batch)
    removed = await sweep.sweep_once()
    while not sweep.at_start:
        removed += await sweep.sweep_once()
    return removed


async def uploads_of(storage: Storage) -> set[str]:
    return {key for key, _ in await storage.list_keys(UPLOADS_ROOT)}


async def test_a_slot_policy_stores_its_key_and_no_other(photos: PhotoService) -> None:
    user = new_user()
    (slot,) = await photos.create_uploads(user, ["image/jpeg"], True)
    owner_prefix = slot.post.key.rsplit("/", 1)[0]

    for other in (
        f"{slot.post.key}.jpg",
        f"{slot.post.key}/again",
        f"{owner_prefix}/{uuid.uuid4()}",
        f"{UPLOADS_ROOT}{uuid.uuid4()}",
    ):
        refused = await post(slot, face_photo(FACE_INDICES[0]), key=other)
        assert refused.status_code == 403 and "AccessDenied" in refused.text, (other, refused)
        assert not await photos.storage.exists(other)
    assert (await post(slot, face_photo(FACE_INDICES[0]))).status_code == 204


async def test_a_completed_slot_posted_again_brings_nothing_back(
    db: Database, storage: Storage, photos: PhotoService
) -> None:
    user = new_user()
    (slot,) = await photos.create_uploads(user, ["image/jpeg"], True)
    original = face_photo(FACE_INDICES[1])
    assert (await post(slot, original)).status_code == 204
    verdict = await photos.complete(user, str(slot.photo_id))
    assert verdict.status == "accepted"
    assert not await storage.exists(slot.post.key)

    # The policy is still valid and cannot be revoked: S3 stores the original again...
    assert (await post(slot, original)).status_code == 204
    # ...but completing again reads nothing and answers the same verdict...
    again = await photos.complete(user, str(slot.photo_id))
    assert (again.status, again.reasons) == (verdict.status, verdict.reasons)
    # ...and the sweep removes it, while the validated photo stays.
    assert await sweep_all(db, storage) >= 1
    assert not await storage.exists(slot.post.key)
    assert (await photos.get(user, str(slot.photo_id))).preview_url is not None


async def test_a_deleted_photo_posted_again_brings_nothing_back(
    db: Database, storage: Storage, photos: PhotoService
) -> None:
    user = new_user()
    (slot,) = await photos.create_uploads(user, ["image/jpeg"], True)
    assert (await post(slot, face_photo(FACE_INDICES[2]))).status_code == 204
    await photos.complete(user, str(slot.photo_id))
    await photos.delete(user, str(slot.photo_id))

    assert (await post(slot, face_photo(FACE_INDICES[2]))).status_code == 204
    await sweep_all(db, storage)

    assert slot.post.key not in await uploads_of(storage)


async def test_the_sweep_removes_unowned_uploads_and_keeps_open_slots(
    db: Database, storage: Storage, photos: PhotoService
) -> None:
    user = new_user()
    posted, waiting = await photos.create_uploads(user, ["image/jpeg", "image/jpeg"], True)
    assert (await post(posted, face_photo(FACE_INDICES[3]))).status_code == 204
    owner_prefix = posted.post.key.rsplit("/", 1)[0]
    orphans = {f"{owner_prefix}/{uuid.uuid4()}" for _ in range(5)}
    for key in orphans:
        await storage.put_bytes(key, b"\xff\xd8 left behind", content_type="image/jpeg")
    elsewhere = f"photos/{uuid.uuid4()}.jpg"
    await storage.put_bytes(elsewhere, b"\xff\xd8 not an upload", content_type="image/jpeg")

    # Two keys a run: bounded, and the walk resumes where the last run stopped.
    sweep = UploadSweep(db, storage, batch=2)
    removed = [await sweep.sweep_once()]
    while not sweep.at_start:
        removed.append(await sweep.sweep_once())

    assert max(removed) <= 2 and len(removed) >= 3
    left = await uploads_of(storage)
    assert posted.post.key in left and not orphans & left
    assert await storage.exists(elsewhere)
    # Idempotent: nothing more to do, and the open slot completes as usual.
    assert await sweep_all(db, storage, batch=2) == 0
    assert (await photos.complete(user, str(posted.photo_id))).status == "accepted"
    assert (await post(waiting, face_photo(FACE_INDICES[4]))).status_code == 204
