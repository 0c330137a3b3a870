"""What a service needs to take part in the user's erasure and export sagas.

The sagas themselves are described with their events in :mod:`visiona.kit.events` (erasure in
rounds until one removes nothing; export in parts the gateway zips). A participant:

- on ``ErasureRequestedV1`` removes every row, object and provider-side artifact of the user
  it holds, then :func:`forget_published_events` (its outbox keeps published events for a few
  days, and they name the user), and answers its ``<service>.account.purged.v1`` with the
  number of things removed in that round;
- on ``ExportRequestedV1`` writes an :class:`ExportPart` and answers its
  ``<service>.account.exported.v1`` with :meth:`ExportPart.done`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from minio.error import S3Error

from visiona.kit.db import UnitOfWork
from visiona.kit.events import AccountExported
from visiona.kit.storage import Storage, is_missing

EXPORTS_PREFIX = "exports/"
# The backup bucket's erasure journal: one object per accepted erasure, named by the gateway's
# keyed pseudonym of the user (docs/adr/0014-backups-and-restore.md); visiona-ops reads it.
ERASURE_JOURNAL_PREFIX = "erasures/"


async def forget_published_events(uow: UnitOfWork, user_id: str) -> int:
    """Delete this service's already-published outbox rows about ``user_id``; returns how many.

    Unpublished rows stay: they are events still on their way (a release of credits, say) and
    the relay prunes them like any other once published.
    """
    result = await uow.session.execute(
        sa.text(
            "DELETE FROM outbox WHERE published_at IS NOT NULL AND payload->>'user_id' = :user"
        ),
        {"user": user_id},
    )
    return int(result.rowcount or 0)


async def unpublished_events(uow: UnitOfWork, user_id: str) -> int:
    """This service's outbox rows about ``user_id`` the relay has not published yet (an erasure
    answers only once none is left, so that no event naming the user outlives it)."""
    count = (
        await uow.session.execute(
            sa.text(
                "SELECT count(*) FROM outbox WHERE published_at IS NULL "
                "AND payload->>'user_id' = :user"
            ),
            {"user": user_id},
        )
    ).scalar_one()
    return int(count)


def export_prefix(export_id: uuid.UUID, service: str | None = None) -> str:
    base = f"{EXPORTS_PREFIX}{export_id}/"
    return f"{base}{service}/" if service else base


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    return value


class ExportPart:
    """One service's part of a user's export: JSON records and copies of the user's files,
    under ``exports/<export_id>/<service>/``. Writing the same part again overwrites it, so a
    redelivered request is harmless."""

    def __init__(self, storage: Storage, export_id: uuid.UUID, service: str) -> None:
        self.storage = storage
        self.export_id = export_id
        self.service = service
        self.prefix = export_prefix(export_id, service)
        self.objects = 0
        self.bytes = 0

    async def add_records(self, name: str, rows: Iterable[Mapping[str, Any]]) -> None:
        """``records/<name>.json``: a JSON array of ``rows`` (datetimes ISO 8601, ids as text)."""
        body = json.dumps([_jsonable(dict(row)) for row in rows], indent=2, ensure_ascii=False)
        data = body.encode()
        await self.storage.put_bytes(
            f"{self.prefix}records/{name}.json", data, content_type="application/json"
        )
        self.objects += 1
        self.bytes += len(data)

    async def add_file(self, source_key: str, name: str) -> None:
        """A server-side copy of the object ``source_key`` as ``files/<name>``."""
        if name.startswith("/") or ".." in name.split("/"):
            raise ValueError("a file name in an export must be relative")
        size = await self.storage.copy(source_key, f"{self.prefix}files/{name}")
        self.objects += 1
        self.bytes += size

    async def add_file_if_present(self, source_key: str, name: str) -> bool:
        """:meth:`add_file`, or False when the object is gone (deleted since its row was read:
        no longer the user's data)."""
        try:
            await self.add_file(source_key, name)
        except S3Error as exc:
            if is_missing(exc):
                return False
            raise
        return True

    def done(self, event_type: type[AccountExported], user_id: str) -> AccountExported:
        """The event that reports this part as complete."""
        return event_type(
            user_id=user_id,
            export_id=self.export_id,
            prefix=self.prefix,
            objects=self.objects,
            bytes=self.bytes,
        )
