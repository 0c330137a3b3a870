"""The ``photos`` table: upload slots, verdicts, listing and deletion, and the queries of the
background work on photos (abandoned slots, the upload sweep, retention, legacy keys)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from visiona.kit.db import UnitOfWork
from visiona.kit.paging import Keyset
from visiona.kit.rows import keyset_page, lock_row, lock_user_scope, set_moved_keys
from visiona.training.repository.model import CUTOFF, due_after

# A photo row as the use cases read it (``sqlalchemy`` rows read like records).
PhotoRow = Any

_COLUMNS = (
    "id, status, reasons, content_type, width, height, faces, blur_score, require_one_face, "
    "created_at, validated_at, object_key, upload_key"
)
_ACCEPTED = "('accepted', 'accepted_with_warnings')"


async def lock_user(uow: UnitOfWork, user_id: str) -> None:
    """One slot request or completion per user at a time."""
    await lock_user_scope(uow, "photos", user_id)


async def count(uow: UnitOfWork) -> int:
    return int((await uow.session.execute(sa.text("SELECT count(*) FROM photos"))).scalar_one())


async def insert_slots(uow: UnitOfWork, slots: list[dict[str, Any]]) -> None:
    """Rows ``uploading`` for new slots (``id``, ``u``, ``ct``, ``key``, ``exp``, ``face``)."""
    await uow.session.execute(
        sa.text(
            "INSERT INTO photos (id, user_id, status, declared_type, upload_key, "
            "upload_expires_at, require_one_face) "
            "VALUES (:id, :u, 'uploading', :ct, :key, :exp, :face)"
        ),
        slots,
    )


async def get(uow: UnitOfWork, photo_id: uuid.UUID) -> PhotoRow | None:
    return (
        await uow.session.execute(
            sa.text(f"SELECT {_COLUMNS} FROM photos WHERE id = :id"), {"id": photo_id}
        )
    ).first()


async def page(uow: UnitOfWork, keyset: Keyset) -> list[PhotoRow]:
    """A page of the user's photos, newest first."""
    return await keyset_page(uow, f"SELECT {_COLUMNS} FROM photos", keyset)


async def statuses_for_share(uow: UnitOfWork, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The status of each photo of ``ids`` that exists, locked against deletion (``FOR
    SHARE``: a model being made from them sees them through its commit)."""
    rows = await uow.session.execute(
        sa.text("SELECT id, status FROM photos WHERE id = ANY(:ids) FOR SHARE"), {"ids": ids}
    )
    return {r.id: r.status for r in rows}


async def object_keys(uow: UnitOfWork, ids: list[uuid.UUID]) -> dict[uuid.UUID, str | None]:
    rows = await uow.session.execute(
        sa.text("SELECT id, object_key FROM photos WHERE id = ANY(:ids)"), {"ids": ids}
    )
    return {r.id: r.object_key for r in rows}


async def accepted_hashes(uow: UnitOfWork, *, besides: uuid.UUID | None = None) -> list[str]:
    """The perceptual hashes of the user's accepted photos (but ``besides``)."""
    rows = await uow.session.execute(
        sa.text(
            f"SELECT phash FROM photos WHERE status IN {_ACCEPTED} AND phash IS NOT NULL "
            "AND id IS DISTINCT FROM :besides"
        ),
        {"besides": besides},
    )
    return [h for (h,) in rows]


async def lock_status(uow: UnitOfWork, photo_id: uuid.UUID) -> str | None:
    found = await uow.session.execute(
        sa.text("SELECT status FROM photos WHERE id = :id FOR UPDATE"), {"id": photo_id}
    )
    return found.scalar()


async def record_verdict(uow: UnitOfWork, photo_id: uuid.UUID, **verdict: Any) -> None:
    """The validation's outcome (``status``, ``reasons``, ``ct``, ``w``, ``h``, ``faces``,
    ``blur``, ``phash``, ``key``, ``size``)."""
    await uow.session.execute(
        sa.text(
            "UPDATE photos SET status = :status, reasons = :reasons, "
            "content_type = :ct, width = :w, height = :h, faces = :faces, "
            "blur_score = :blur, phash = :phash, object_key = :key, size_bytes = :size, "
            "validated_at = now() WHERE id = :id"
        ),
        {**verdict, "id": photo_id},
    )


async def lock_keys(uow: UnitOfWork, photo_id: uuid.UUID) -> PhotoRow | None:
    """``(status, object_key, upload_key)`` of the photo, locked."""
    return await lock_row(uow, "photos", photo_id, "status, object_key, upload_key")


async def delete(uow: UnitOfWork, photo_id: uuid.UUID) -> None:
    await uow.session.execute(sa.text("DELETE FROM photos WHERE id = :id"), {"id": photo_id})


async def delete_all(uow: UnitOfWork) -> int:
    """Every photo row of the unit of work's user; how many."""
    result = await uow.session.execute(sa.text("DELETE FROM photos"))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# -- abandoned slots and the upload sweep (visiona.training.jobs.upload_sweep) -------------------


async def abandoned_slots(uow: UnitOfWork, older_than_s: float) -> list[PhotoRow]:
    """``(id, user_id, upload_key)`` of slots whose policy expired long ago, across users."""
    rows = await uow.session.execute(
        sa.text(
            "SELECT id, user_id, upload_key FROM photos WHERE status = 'uploading' "
            "AND upload_expires_at < now() - make_interval(secs => :age) LIMIT 500"
        ),
        {"age": older_than_s},
    )
    return list(rows.all())


async def delete_slot(uow: UnitOfWork, photo_id: uuid.UUID) -> None:
    """The photo's row, if it is still an open slot."""
    await uow.session.execute(
        sa.text("DELETE FROM photos WHERE id = :id AND status = 'uploading'"), {"id": photo_id}
    )


async def open_slot_keys(uow: UnitOfWork, keys: list[str]) -> set[str]:
    """Which of ``keys`` an open slot (a photo still ``uploading``) owns."""
    rows = await uow.session.execute(
        sa.text(
            "SELECT upload_key FROM photos WHERE status = 'uploading' AND upload_key = ANY(:keys)"
        ),
        {"keys": keys},
    )
    return {k for (k,) in rows}


# -- retention (visiona.training.jobs.retention) -------------------------------------------------

# A model that still holds a photo back: in progress, or ended less than R ago.
_HOLDS_PHOTO = (
    f"(m.status = ANY(:in_progress) OR m.finished_at IS NULL OR m.finished_at >= {CUTOFF})"
)
_DUE_PHOTOS = (
    "SELECT p.id, p.user_id, p.created_at AS at FROM photos p "
    f"WHERE p.created_at < {CUTOFF} {{after}} "
    f"AND NOT EXISTS (SELECT 1 FROM models m WHERE m.photo_ids @> ARRAY[p.id] AND {_HOLDS_PHOTO}) "
    "ORDER BY p.created_at, p.id LIMIT :n"
)
_LOCK_PHOTO = (
    "SELECT object_key, upload_key FROM photos p "
    f"WHERE p.id = :id AND p.created_at < {CUTOFF} FOR UPDATE SKIP LOCKED"
)
_PHOTO_HELD = f"SELECT 1 FROM models m WHERE :id = ANY(m.photo_ids) AND {_HOLDS_PHOTO} LIMIT 1"


async def due_photos(
    uow: UnitOfWork, params: dict[str, Any], after: tuple[datetime, uuid.UUID] | None
) -> list[Any]:
    """``(id, user_id, at)`` of the photos the retention has made due, across users, in
    ``(created_at, id)`` order after ``after``; ``params`` has ``keep``, ``in_progress``, ``n``."""
    return await due_after(uow, _DUE_PHOTOS, "p.created_at, p.id", params, after)


async def lock_due_photo(
    uow: UnitOfWork, photo_id: uuid.UUID, params: dict[str, Any]
) -> PhotoRow | None:
    """``(object_key, upload_key)`` of the photo, locked, if it is old enough and no other
    replica or request holds it; None too when a model still holds it back (checked in a
    statement of its own, after the lock: it sees a model committed meanwhile)."""
    values = {**params, "id": photo_id}
    row = (await uow.session.execute(sa.text(_LOCK_PHOTO), values)).first()
    if row is None:
        return None
    if (await uow.session.execute(sa.text(_PHOTO_HELD), values)).first() is not None:
        return None
    return row


# -- keys stored before owner keys (visiona.training.jobs.legacy_keys) --------------------------


async def on_legacy_keys(uow: UnitOfWork, prefixes: dict[str, str]) -> list[uuid.UUID]:
    """The user's photos whose object is still under ``photos/<user id>/``, or whose slot,
    no longer open, still names ``uploads/<user id>/``."""
    found = await uow.session.execute(
        sa.text(
            "SELECT id FROM photos WHERE starts_with(object_key, :photos) "
            "OR (status <> 'uploading' AND starts_with(upload_key, :uploads))"
        ),
        prefixes,
    )
    return list(found.scalars())


async def set_keys(
    uow: UnitOfWork, photo_id: uuid.UUID, object_key: str | None, upload_key: str | None
) -> None:
    """Point the photo at moved keys (a ``None`` key stays as it is)."""
    await set_moved_keys(uow, "photos", photo_id, object_key=object_key, upload_key=upload_key)
