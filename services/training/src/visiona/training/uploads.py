"""Photos: presigned uploads straight to S3, server-side validation, listing and deletion.

A photo row exists from the moment its upload slot is handed out (``uploading``). The client
POSTs the file to S3 under a policy that fixes the exact key, the content type and the size;
then ``complete`` reads the object back, validates it
(:func:`visiona.training.photos.validate_photo`) and stores the clean re-encoded JPEG under
``photos/``, a key no client ever had a policy for. The uploaded original is always deleted
afterwards: it may carry GPS EXIF or anything else the client appended, and nothing downstream
uses it.

A slot is completed once: completing it again answers the same verdict without reading the
upload key. The policy itself cannot be revoked, so until it expires the client can post its
key again; what lands there is never read, and the upload sweep
(:mod:`visiona.training.upload_sweep`) removes it, as it removes anything under ``uploads/``
that no slot still ``uploading`` owns.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from minio.error import S3Error

from visiona.kit.db import Database
from visiona.kit.errors import Conflict, InvalidArgument, NotFound, limit_text, size_text
from visiona.kit.logging import get_logger
from visiona.kit.owners import owner_key
from visiona.kit.paging import decode_cursor, encode_cursor, page_size, parse_id
from visiona.kit.storage import PresignedPost, Storage
from visiona.training.config import TrainingSettings
from visiona.training.models import refuse_while_erasing

log = get_logger(__name__)

ALLOWED_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/heic", "image/heif"})
MAX_SLOTS_PER_REQUEST = 30
PREVIEW_TTL = timedelta(minutes=15)
# Photos in these model states are still needed to build the dataset.
_NEEDED_BY = ("awaiting_credits", "preparing")


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


# Every upload slot's key is under this prefix, and nothing else is (visiona.training.upload_sweep
# removes whatever there no open slot owns).
UPLOADS_ROOT = "uploads/"


# Keys name the user's opaque owner key (visiona.kit.owners), never the user id.
def upload_key(owner: str, photo_id: uuid.UUID) -> str:
    return f"{UPLOADS_ROOT}{owner}/{photo_id}"


def photo_key(owner: str, photo_id: uuid.UUID) -> str:
    return f"photos/{owner}/{photo_id}.jpg"


_COLUMNS = (
    "id, status, reasons, content_type, width, height, faces, blur_score, require_one_face, "
    "created_at, validated_at, object_key, upload_key"
)


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
            await uow.session.execute(
                sa.text("SELECT pg_advisory_xact_lock(hashtext('photos:' || :u))"), {"u": user_id}
            )
            await refuse_while_erasing(uow)
            count = (await uow.session.execute(sa.text("SELECT count(*) FROM photos"))).scalar_one()
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
            await uow.session.execute(
                sa.text(
                    "INSERT INTO photos (id, user_id, status, declared_type, upload_key, "
                    "upload_expires_at, require_one_face) "
                    "VALUES (:id, :u, 'uploading', :ct, :key, :exp, :face)"
                ),
                rows,
            )
            await uow.commit()
        return slots

    async def _row(self, user_id: str, photo_id: uuid.UUID) -> Any:
        async with self.db.uow(user_id) as uow:
            row = (
                await uow.session.execute(
                    sa.text(f"SELECT {_COLUMNS} FROM photos WHERE id = :id"), {"id": photo_id}
                )
            ).first()
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
            known = [
                r[0]
                for r in await uow.session.execute(
                    sa.text(
                        "SELECT phash FROM photos WHERE status IN "
                        "('accepted', 'accepted_with_warnings') AND phash IS NOT NULL"
                    )
                )
            ]
        from visiona.training.photos import validate_photo  # OpenCV loads on first use

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
            await uow.session.execute(
                sa.text("SELECT pg_advisory_xact_lock(hashtext('photos:' || :u))"), {"u": user_id}
            )
            current = (
                await uow.session.execute(
                    sa.text("SELECT status FROM photos WHERE id = :id FOR UPDATE"),
                    {"id": photo_id},
                )
            ).scalar()
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
                from visiona.training.photos import hamming

                others = await uow.session.execute(
                    sa.text(
                        "SELECT phash FROM photos WHERE id <> :id AND phash IS NOT NULL AND "
                        "status IN ('accepted', 'accepted_with_warnings')"
                    ),
                    {"id": photo_id},
                )
                if any(hamming(verdict.phash, h) <= s.duplicate_distance for (h,) in others):
                    status, reasons = "rejected", [*reasons, "duplicate"]
            await uow.session.execute(
                sa.text(
                    "UPDATE photos SET status = :status, reasons = :reasons, "
                    "content_type = :ct, width = :w, height = :h, faces = :faces, "
                    "blur_score = :blur, phash = :phash, object_key = :key, size_bytes = :size, "
                    "validated_at = now() WHERE id = :id"
                ),
                {
                    "status": status,
                    "reasons": reasons,
                    "ct": verdict.content_type,
                    "w": verdict.width,
                    "h": verdict.height,
                    "faces": verdict.faces,
                    "blur": verdict.blur_score,
                    "phash": verdict.phash if status != "rejected" else None,
                    "key": key if status != "rejected" else None,
                    "size": len(verdict.normalized) if verdict.normalized else None,
                    "id": photo_id,
                },
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
            if exc.code in ("NoSuchKey", "NoSuchObject", "NotFound"):
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
        limit = page_size(requested)
        after = decode_cursor(token)
        where = "" if after is None else "WHERE (created_at, id) < (:at, :id) "
        params: dict[str, Any] = {"limit": limit + 1}
        if after is not None:
            params |= {"at": after[0], "id": after[1]}
        async with self.db.uow(user_id) as uow:
            rows = (
                await uow.session.execute(
                    sa.text(
                        f"SELECT {_COLUMNS} FROM photos {where}"
                        "ORDER BY created_at DESC, id DESC LIMIT :limit"
                    ),
                    params,
                )
            ).all()
        more = len(rows) > limit
        rows = rows[:limit]
        token_out = encode_cursor(rows[-1].created_at, rows[-1].id) if more else ""
        return [self._view(r) for r in rows], token_out

    async def delete(self, user_id: str, photo_id_text: str) -> None:
        photo_id = parse_id(photo_id_text, "photo")
        async with self.db.uow(user_id) as uow:
            row = (
                await uow.session.execute(
                    sa.text("SELECT object_key, upload_key FROM photos WHERE id = :id FOR UPDATE"),
                    {"id": photo_id},
                )
            ).first()
            if row is None:
                raise NotFound(f"no photo {photo_id}", code="photo_not_found")
            in_use = (
                await uow.session.execute(
                    sa.text(
                        "SELECT 1 FROM models WHERE :id = ANY(photo_ids) AND deleted_at IS NULL "
                        "AND status = ANY(:states) LIMIT 1"
                    ),
                    {"id": photo_id, "states": list(_NEEDED_BY)},
                )
            ).first()
            if in_use:
                raise Conflict(
                    "a model being prepared uses this photo; try again once it is training",
                    code="photo_in_use",
                )
            await uow.session.execute(
                sa.text("DELETE FROM photos WHERE id = :id"), {"id": photo_id}
            )
            await uow.commit()
        for key in (row.object_key, row.upload_key):
            if key:
                await self.storage.delete(key)


async def remove_abandoned_uploads(db: Database, storage: Storage, older_than_s: float) -> int:
    """Slots whose upload policy expired long ago and were never completed: row and object."""
    async with db.uow(system=True) as uow:
        rows = (
            await uow.session.execute(
                sa.text(
                    "SELECT id, user_id, upload_key FROM photos WHERE status = 'uploading' "
                    "AND upload_expires_at < now() - make_interval(secs => :age) LIMIT 500"
                ),
                {"age": older_than_s},
            )
        ).all()
    for row in rows:
        await storage.delete(row.upload_key)
        async with db.uow(row.user_id) as uow:
            await uow.session.execute(
                sa.text("DELETE FROM photos WHERE id = :id AND status = 'uploading'"),
                {"id": row.id},
            )
            await uow.commit()
    return len(rows)
