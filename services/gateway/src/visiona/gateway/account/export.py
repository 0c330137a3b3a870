"""Data export (GDPR art. 15 and 20): every record and file of the user in one zip.

``POST /v1/me/export`` records an ``exports`` row (its own job, visiona.kit.jobs.RowJobs) and
emits ``gateway.export.requested.v1``. Each participant writes its part under
``exports/<id>/<service>/`` and answers ``<service>.account.exported.v1``. When every part is
in, the gateway adds ``account/`` (what it knows itself: the Clerk profile, the audit trail)
and a ``manifest.json``, streams everything into ``exports/<id>.zip`` (never in memory:
visiona.kit.zipstream), deletes the parts and emits ``gateway.export.ready.v1``. The archive is
offered through presigned links of ``export_link_ttl_s`` and deleted after ``export_ttl_s``.

Parts still missing after ``export_part_timeout_s`` are asked for again (writing a part is
idempotent); an export not complete by ``export_deadline_s`` fails and its parts are deleted.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from visiona.gateway.account import answers_of
from visiona.gateway.config import GatewaySettings
from visiona.gateway.repository import account as accounts
from visiona.gateway.repository import audit as audit_log
from visiona.gateway.repository import export as repository
from visiona.gateway.repository.export import Export
from visiona.kit.db import Database, UnitOfWork
from visiona.kit.erasure import ExportPart, export_prefix
from visiona.kit.events import (
    ERASURE_PARTICIPANTS,
    AccountExported,
    Event,
    ExportReadyV1,
    ExportRequestedV1,
)
from visiona.kit.jobs import JobSettings, RowJobs
from visiona.kit.logging import get_logger
from visiona.kit.storage import Storage
from visiona.kit.zipstream import assemble

log = get_logger(__name__)

EXPORTED_EVENTS = answers_of(AccountExported)
FORMAT_VERSION = 1


def archive_key(export_id: uuid.UUID) -> str:
    return f"exports/{export_id}.zip"


async def request_export(
    uow: UnitOfWork, settings: GatewaySettings, user_id: str, idempotency_key: str | None = None
) -> tuple[Export, bool]:
    """Start an export for the user (acting as them), or return the one still in progress;
    with a (scoped) Idempotency-Key, the export that key already started, as it stands now
    (ADR 0009). Also says whether it is that key's earlier answer (a replay)."""
    # One request at a time per user: concurrent requests (a retry beside its first attempt)
    # see each other's export.
    await repository.lock_requests_of(uow, user_id)
    if idempotency_key is not None:
        earlier = await repository.find_by_key(uow, user_id, idempotency_key)
        if earlier is not None:
            return earlier, True
    running = await repository.in_progress(uow, user_id)
    if running is not None:
        return running, False
    export_id = await repository.insert(
        uow,
        user_id,
        reask_after_s=settings.export_part_timeout_s,
        idempotency_key=idempotency_key,
    )
    uow.emit(ExportRequestedV1(user_id=user_id, export_id=export_id))
    record = await repository.load(uow, export_id, lock=False)
    assert record is not None
    return record, False


async def get(db: Database, user_id: str, export_id: uuid.UUID) -> Export | None:
    async with db.uow(user_id) as uow:
        return await repository.load(uow, export_id, lock=False)


async def recent(db: Database, user_id: str) -> list[Export]:
    async with db.uow(user_id) as uow:
        return await repository.recent(uow, user_id)


def view(
    record: Export, storage: Storage | None, settings: GatewaySettings, *, link: bool
) -> dict[str, Any]:
    """The export as the API shows it; with ``link``, a ready archive gets a short-lived
    download link (no longer than the archive is kept)."""
    shown: dict[str, Any] = {
        "id": record.id,
        "status": record.status,
        "parts": sorted(record.parts),
        "bytes": record.bytes,
        "error": record.error,
        "requested_at": record.requested_at,
        "ready_at": record.ready_at,
        "expires_at": record.expires_at,
    }
    if link and record.status == "ready" and record.archive_key and storage:
        now = datetime.now(UTC)
        ttl = timedelta(seconds=settings.export_link_ttl_s)
        if record.expires_at is not None:
            ttl = min(ttl, record.expires_at - now)
        if ttl.total_seconds() >= 1:
            shown["download_url"] = storage.presigned_get(
                record.archive_key,
                expires=ttl,
                response_headers={
                    "response-content-disposition": (
                        f'attachment; filename="visiona-export-{record.id}.zip"'
                    ),
                    "response-content-type": "application/zip",
                },
            )
            shown["download_expires_at"] = now + ttl
    return shown


class ExportJobs(RowJobs[Export]):
    table = "exports"
    name = "exports"

    def __init__(self, db: Database, settings: GatewaySettings, storage: Storage) -> None:
        super().__init__(
            db,
            JobSettings(poll_interval_s=settings.saga_poll_interval_s, batch=4, lease_s=120.0),
        )
        self.settings = settings
        self.storage = storage

    async def load(self, uow: UnitOfWork, row_id: uuid.UUID, *, lock: bool) -> Export | None:
        return await repository.load(uow, row_id, lock=lock)

    async def save(self, uow: UnitOfWork, row: Export, **changes: Any) -> None:
        await repository.save(uow, row, **changes)

    async def give_up(self, uow: UnitOfWork, row: Export, kind: str, error: BaseException) -> bool:
        if kind != "assemble":
            return False
        await self.save(uow, row, status="failed", error="assembly_failed", work="discard")
        return True

    # -- steps -----------------------------------------------------------------------------------

    async def step_reask(self, row: Export) -> None:
        """Parts missing after the timeout: ask again, or fail after the deadline."""
        async with self.locked(row) as (uow, current):
            if current.work != "reask":
                return
            now = datetime.now(UTC)
            missing = [s for s in ERASURE_PARTICIPANTS if s not in current.parts]
            if now - current.requested_at > timedelta(seconds=self.settings.export_deadline_s):
                await self.save(
                    uow, current, status="failed", error="parts_missing", work="discard"
                )
            else:
                await self.save(
                    uow,
                    current,
                    work_after=now + timedelta(seconds=self.settings.export_part_timeout_s),
                )
                uow.emit(ExportRequestedV1(user_id=current.user_id, export_id=current.id))
            await uow.commit()
        log.warning("export.parts_asked_again", export_id=str(row.id), missing=missing)

    async def step_assemble(self, row: Export) -> None:
        account = await self._account_part(row)
        base = export_prefix(row.id)
        members = [
            (key[len(base) :], key)
            for key, _ in await self.storage.list_keys(base)
            if key != f"{base}manifest.json"
        ]
        manifest = {
            "format_version": FORMAT_VERSION,
            "export_id": str(row.id),
            "user_id": row.user_id,
            "requested_at": row.requested_at.isoformat(),
            "created_at": datetime.now(UTC).isoformat(),
            "parts": {name: row.parts.get(name, {}) for name in ERASURE_PARTICIPANTS}
            | {"account": {"objects": account.objects, "bytes": account.bytes}},
            "files": [name for name, _ in members],
        }
        await self.storage.put_bytes(
            f"{base}manifest.json",
            json.dumps(manifest, indent=2).encode(),
            content_type="application/json",
        )
        members.insert(0, ("manifest.json", f"{base}manifest.json"))
        key = archive_key(row.id)
        archive = await assemble(self.storage, members, key)
        async with self.locked(row) as (uow, current):
            if current.work != "assemble":
                return
            now = datetime.now(UTC)
            expires = now + timedelta(seconds=self.settings.export_ttl_s)
            await self.save(
                uow,
                current,
                status="ready",
                archive_key=key,
                bytes=archive.size,
                ready_at=now,
                expires_at=expires,
                work="discard",
                work_after=now,
            )
            uow.emit(ExportReadyV1(user_id=current.user_id, export_id=current.id))
            await uow.commit()
        log.info("export.ready", export_id=str(row.id), members=archive.members)

    async def step_discard(self, row: Export) -> None:
        """Delete the parts (after assembly or failure); a ready archive waits to expire."""
        await self.storage.delete_prefix(export_prefix(row.id))
        async with self.locked(row) as (uow, current):
            if current.work != "discard":
                return
            if current.status == "ready":
                assert current.expires_at is not None
                await self.save(uow, current, work="expire", work_after=current.expires_at)
            else:
                await self.save(uow, current, work=None)
            await uow.commit()

    async def step_expire(self, row: Export) -> None:
        if row.archive_key:
            await self.storage.delete(row.archive_key)
        async with self.locked(row) as (uow, current):
            if current.work != "expire":
                return
            await self.save(uow, current, status="expired", work=None)
            await uow.commit()

    async def _account_part(self, row: Export) -> ExportPart:
        """What the gateway itself holds of the user: the Clerk profile and the audit trail."""
        part = ExportPart(self.storage, row.id, "account")
        async with self.db.uow(row.user_id) as uow:
            profile = await accounts.profile_for_export(uow, row.user_id)
            audit = await audit_log.for_export(uow, row.user_id)
            exports = [
                {
                    "id": e.id,
                    "status": e.status,
                    "requested_at": e.requested_at,
                    "ready_at": e.ready_at,
                    "expires_at": e.expires_at,
                }
                for e in await repository.recent(uow, row.user_id, limit=1000)
            ]
        await part.add_records("profile", profile)
        await part.add_records("exports", exports)
        await part.add_records("audit_log", audit)
        return part

    # -- answers -----------------------------------------------------------------------------

    async def on_exported(self, event: Event, uow: UnitOfWork) -> None:
        assert isinstance(event, AccountExported)
        current = await repository.load(uow, event.export_id, lock=True)
        if current is None or current.status != "collecting" or current.user_id != event.user_id:
            return
        parts = {
            **current.parts,
            event.service: {"objects": event.objects, "bytes": event.bytes},
        }
        changes: dict[str, Any] = {"parts": parts}
        if all(name in parts for name in ERASURE_PARTICIPANTS):
            changes |= {
                "status": "assembling",
                "work": "assemble",
                "work_after": datetime.now(UTC),
                "work_attempts": 0,
            }
            uow.after_commit(self.wake)
        await self.save(uow, current, **changes)

    def handlers(self) -> Mapping[type[Event], Any]:
        return dict.fromkeys(EXPORTED_EVENTS, self.on_exported)
