"""Photos: presigned uploads straight to S3, server-side validation, listing and deletion.

A photo row exists from the moment its upload slot is handed out (``uploading``). The client
POSTs the file to S3 under a policy that fixes the exact key, the content type and the size;
then ``complete`` reads the object back, validates it
(:func:`visiona.training.domain.photo.validate_photo`) and stores the clean re-encoded JPEG under
``photos/``, a key no client ever had a policy for. The uploaded original is always deleted
afterwards: it may carry GPS EXIF or anything else the client appended, and nothing downstream
uses it.

A slot is completed once: completing it again answers the same verdict without reading the
upload key. The policy itself cannot be revoked, so until it expires the client can post its
key again; what lands there is never read, and the upload sweep
(:mod:`visiona.training.jobs.upload_sweep`) removes it, as it removes anything under ``uploads/``
that no slot still ``uploading`` owns.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from minio.error import S3Error

from visiona.kit.db import Database
from visiona.kit.errors import Conflict, InvalidArgument, NotFound, limit_text, size_text
from visiona.kit.logging import get_logger
from visiona.kit.owners import owner_key
from visiona.kit.paging import Keyset, parse_id
from visiona.kit.storage import PresignedPost, Storage, is_missing
from visiona.training.config import TrainingSettings
from visiona.training.repository import model as model_repo
from visiona.training.repository import photo as repo
from visiona.training.repository.account import refuse_while_erasing

log = get_logger(__name__)

ALLOWED_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/heic", "image/heif"})
MAX_SLOTS_PER_REQUEST = 30
PREVIEW_TTL = timedelta(minutes=15)
# Photos in these model states are still needed to build the dataset.
_NEEDED_BY = ["awaiting_credits", "preparing"]


@dataclass(frozen=True)
class PhotoView:
    id: uuid.UUID
    status: str
    reasons: tuple[str, ...]
    content_type: str | None
    width: int | None
    height: int | None
    faces: int | None
    blur_score: float | None
    require_one_face: bool
    created_at: datetime
    validated_at: datetime | None
    preview_url: str | None


@dataclass(frozen=True)
class UploadSlot:
    photo_id: uuid.UUID
    post: PresignedPost
    max_bytes: int


# Every upload slot's key is under this prefix, and nothing else is (the upload sweep,
# visiona.training.jobs.upload_sweep, removes whatever there no open slot owns).
UPLOADS_ROOT = "uploads/"


# Keys name the user's opaque owner key (visiona.kit.owners), never the user id.
def upload_key(owner: str, photo_id: uuid.UUID) -> str:
    return f"{UPLOADS_ROOT}{owner}/{photo_id}"


def photo_key(owner: str, photo_id: uuid.UUID) -> str:
    return f"photos/{owner}/{photo_id}.jpg"


class PhotoService:
    def __init__(self, db: Database, storage: Storage, settings: TrainingSettings) -> None:
        self.db = db
        self.storage = storage
        self.settings = settings

    def _view(self, row: Any) -> PhotoView:
        preview = (
            self.storage.presigned_get(row.object_key, expires=PREVIEW_TTL)
            if row.object_key
            else None
        )
        return PhotoView(
            id=row.id,
            status=row.status,
            reasons=tuple(row.reasons or ()),
            content_type=row.content_type,
            width=row.width,
            height=row.height,
            faces=row.faces,
            blur_score=row.blur_score,
            require_one_face=row.require_one_face,
            created_at=row.created_at,
            validated_at=row.validated_at,
            preview_url=preview,
        )

    async def create_uploads(
        self, user_id: str, content_types: list[str], require_one_face: bool
    ) -> list[UploadSlot]:
        if not 1 <= len(content_types) <= MAX_SLOTS_PER_REQUEST:
            raise InvalidArgument(
                f"ask for 1-{MAX_SLOTS_PER_REQUEST} uploads at a time", code="upload_count_invalid"
            )
        for ct in content_types:
            if ct.lower() not in ALLOWED_TYPES:
                raise InvalidArgument(
                    f"content type {ct!r} is not accepted; use JPEG, PNG, WebP or HEIC",
                    code="content_type_unsupported",
                )
        expires = timedelta(seconds=self.settings.upload_expires_s)
        async with self.db.uow(user_id) as uow:
            await repo.lock_user(uow, user_id)
            await refuse_while_erasing(uow)
            count = await repo.count(uow)
            if count + len(content_types) > self.settings.max_photos_per_user:
                raise Conflict(
                    f"at most {self.settings.max_photos_per_user} photos per account; "
                    "delete some first",
                    code="photo_limit_reached",
                )
            owner = await owner_key(uow, user_id)
            # Signed before the rows commit, handed out after: an object under a slot's key
            # never exists before its row (the upload sweep relies on it).
            expires_at = datetime.now(UTC) + expires
            slots = []
            rows = []
            for ct in content_types:
                photo_id = uuid.uuid4()
                key = upload_key(owner, photo_id)
                post = self.storage.presigned_post(
                    key,
                    max_bytes=self.settings.upload_max_bytes,
                    content_type=ct.lower(),
                    expires=expires,
                )
                slots.append(UploadSlot(photo_id, post, self.settings.upload_max_bytes))
                rows.append(
                    {
                        "id": photo_id,
                        "u": user_id,
                        "ct": ct.lower(),
                        "key": key,
                        "exp": expires_at,
                        "face": require_one_face,
                    }
                )
            await repo.insert_slots(uow, rows)
            await uow.commit()
        return slots

    async def _row(self, user_id: str, photo_id: uuid.UUID) -> Any:
        async with self.db.uow(user_id) as uow:
            row = await repo.get(uow, photo_id)
        if row is None:
            raise NotFound(f"no photo {photo_id}", code="photo_not_found")
        return row

    async def get(self, user_id: str, photo_id: str) -> PhotoView:
        return self._view(await self._row(user_id, parse_id(photo_id, "photo")))

    async def complete(self, user_id: str, photo_id_text: str) -> PhotoView:
        """Validate the uploaded photo once; completing it again answers the same verdict."""
        photo_id = parse_id(photo_id_text, "photo")
        row = await self._row(user_id, photo_id)
        if row.status != "uploading":
            return self._view(row)
        data = await self._read_upload(row.upload_key)
        async with self.db.uow(user_id) as uow:
            known = await repo.accepted_hashes(uow)
        from visiona.training.domain.photo import validate_photo  # OpenCV loads on first use

        s = self.settings
        verdict = await asyncio.to_thread(
            validate_photo,
            data,
            known_hashes=known,
            require_one_face=row.require_one_face,
            min_short_side=s.min_short_side,
            max_pixels=s.max_pixels,
            blur_threshold=s.blur_threshold,
            duplicate_distance=s.duplicate_distance,
        )
        del data
        status, reasons = verdict.status, list(verdict.reasons)
        key = None
        if verdict.normalized is not None:
            async with self.db.uow(user_id) as uow:
                # Never draws an owner key for a user whose erasure runs (it would outlive it).
                await refuse_while_erasing(uow)
                owner = await owner_key(uow, user_id)
                await uow.commit()
            key = photo_key(owner, photo_id)
            await self.storage.put_bytes(key, verdict.normalized, content_type="image/jpeg")
        async with self.db.uow(user_id) as uow:
            # One completion per user at a time from here: two copies of one picture
            # completed together must not both pass the duplicate check.
            await repo.lock_user(uow, user_id)
            current = await repo.lock_status(uow, photo_id)
            if current is None:
                # Deleted while it was validated (by the user, or their account's erasure):
                # what this completion stored must not outlive the row.
                for stale in (key, row.upload_key):
                    if stale:
                        await self.storage.delete(stale)
                raise NotFound(f"no photo {photo_id}", code="photo_not_found")
            if current != "uploading":  # a concurrent completion won
                return self._view(await self._row(user_id, photo_id))
            if verdict.phash and status != "rejected":
                from visiona.training.domain.photo import hamming

                others = await repo.accepted_hashes(uow, besides=photo_id)
                if any(hamming(verdict.phash, h) <= s.duplicate_distance for h in others):
                    status, reasons = "rejected", [*reasons, "duplicate"]
            await repo.record_verdict(
                uow,
                photo_id,
                status=status,
                reasons=reasons,
                ct=verdict.content_type,
                w=verdict.width,
                h=verdict.height,
                faces=verdict.faces,
                blur=verdict.blur_score,
                phash=verdict.phash if status != "rejected" else None,
                key=key if status != "rejected" else None,
                size=len(verdict.normalized) if verdict.normalized else None,
            )
            await uow.commit()
        if status == "rejected" and key is not None:
            await self.storage.delete(key)
        # The original goes whatever the verdict: only the clean copy is kept.
        await self.storage.delete(row.upload_key)
        log.info("training.photo_validated", photo_id=str(photo_id), status=status, reasons=reasons)
        return self._view(await self._row(user_id, photo_id))

    async def _read_upload(self, key: str) -> bytes:
        limit = self.settings.upload_max_bytes
        try:
            stat = await asyncio.to_thread(
                self.storage.client.stat_object, self.storage.bucket, key
            )
        except S3Error as exc:
            if is_missing(exc):
                raise Conflict(
                    "nothing was uploaded for this photo yet", code="photo_not_uploaded"
                ) from None
            raise
        size = stat.size or 0
        if size > limit:  # the policy forbids it; never trust one check alone
            await self.storage.delete(key)
            raise InvalidArgument(
                f"the upload is {size_text(size)} ({size} bytes); photos are at most "
                f"{limit_text(limit)}",
                code="photo_too_large",
                max_bytes=limit,
            )
        chunks = [chunk async for chunk in self.storage.get_stream(key)]
        return b"".join(chunks)

    async def page(self, user_id: str, requested: int, token: str) -> tuple[list[PhotoView], str]:
        keyset = Keyset.of(requested, token)
        async with self.db.uow(user_id) as uow:
            rows, token_out = keyset.cut(await repo.page(uow, keyset))
        return [self._view(r) for r in rows], token_out

    async def delete(self, user_id: str, photo_id_text: str) -> None:
        photo_id = parse_id(photo_id_text, "photo")
        async with self.db.uow(user_id) as uow:
            row = await repo.lock_keys(uow, photo_id)
            if row is None:
                raise NotFound(f"no photo {photo_id}", code="photo_not_found")
            if await model_repo.uses_photo_in(uow, photo_id, _NEEDED_BY):
                raise Conflict(
                    "a model being prepared uses this photo; try again once it is training",
                    code="photo_in_use",
                )
            await repo.delete(uow, photo_id)
            await uow.commit()
        for key in (row.object_key, row.upload_key):
            if key:
                await self.storage.delete(key)
