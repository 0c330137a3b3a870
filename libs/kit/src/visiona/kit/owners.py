"""Opaque storage owners: S3 keys name a random per-user key, never the user id.

Object keys show up in bucket listings, S3 access logs, inventory reports and provider fetches
(a presigned URL carries its key). A key like ``photos/<clerk id>/…`` names the user in all of
them; ``photos/<owner key>/…`` names nobody. Each service that stores objects keeps its users'
owner keys in its own ``storage_owners`` table (row-level security like any user row): 32 hex
characters from a strong random source, drawn the first time the user stores something, and
deleted by the user's erasure once their objects are gone, after which nothing ties the key to
anyone.

Objects stored before owner keys existed (``<top>/<user id>/…``) are moved by
:class:`LegacyKeys`: a migration gives every user who had rows a ``legacy`` owner, and the job
copies each of their objects to its new key, points the row at it, then deletes the old
object and finally the old prefix, owner by owner. Every step is idempotent and a crash at any
point is resumed by the next run.
"""

from __future__ import annotations

import abc
import secrets
from collections.abc import Awaitable, Callable, Sequence
from typing import ClassVar

import sqlalchemy as sa
from minio.error import S3Error

from visiona.kit.db import Database, UnitOfWork
from visiona.kit.logging import get_logger
from visiona.kit.migrations import user_rls_ddl
from visiona.kit.storage import Storage, is_missing

log = get_logger(__name__)

TABLE = "storage_owners"


def owners_ddl(schema: str, legacy_sources: Sequence[str] = ()) -> str:
    """The ``storage_owners`` table, and a ``legacy`` owner for every user with a row in one of
    ``legacy_sources`` (user-owned tables of ``schema``: their objects have user-id keys)."""
    ddl = f"""
        CREATE TABLE "{schema}".{TABLE} (
            user_id text PRIMARY KEY,
            key text NOT NULL UNIQUE CONSTRAINT owner_key_shape CHECK (key ~ '^[0-9a-f]{{32}}$'),
            legacy boolean NOT NULL DEFAULT false,
            created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX storage_owners_legacy ON "{schema}".{TABLE} (created_at) WHERE legacy;
        """ + user_rls_ddl(schema, TABLE, system_read=True)
    if legacy_sources:
        tables = [f'"{schema}".{table}' for table in (TABLE, *legacy_sources)]
        users = " UNION ".join(f"SELECT user_id FROM {table}" for table in tables[1:])
        # Every user's rows, once, by the owner: row-level security is lifted for this
        # transaction only.
        ddl += "".join(f"ALTER TABLE {t} NO FORCE ROW LEVEL SECURITY;\n" for t in tables)
        ddl += f"""
        INSERT INTO "{schema}".{TABLE} (user_id, key, legacy)
            SELECT u, replace(gen_random_uuid()::text, '-', ''), true
            FROM ({users}) AS legacy_users(u)
            ON CONFLICT DO NOTHING;
        """
        ddl += "".join(f"ALTER TABLE {t} FORCE ROW LEVEL SECURITY;\n" for t in tables)
    return ddl


async def owner_key(uow: UnitOfWork, user_id: str) -> str:
    """The user's owner key, drawn now if they have none (in the unit of work: the caller
    commits). Concurrent first calls agree: the second insert waits and yields."""
    await uow.session.execute(
        sa.text(
            f"INSERT INTO {TABLE} (user_id, key) VALUES (:u, :k) ON CONFLICT (user_id) DO NOTHING"
        ),
        {"u": user_id, "k": secrets.token_hex(16)},
    )
    key = await find_owner_key(uow, user_id)
    assert key is not None
    return key


async def find_owner_key(uow: UnitOfWork, user_id: str) -> str | None:
    """The user's owner key, or None if they never stored anything (or were erased)."""
    found = await uow.session.execute(
        sa.text(f"SELECT key FROM {TABLE} WHERE user_id = :u"), {"u": user_id}
    )
    value = found.scalar()
    return None if value is None else str(value)


async def owner_key_of(db: Database, user_id: str) -> str:
    """:func:`owner_key` in a transaction of its own, committed."""
    async with db.uow(user_id) as uow:
        key = await owner_key(uow, user_id)
        await uow.commit()
    return key


async def forget_owner(uow: UnitOfWork, user_id: str) -> int:
    """Erasure's last word on storage: the user's owner key goes (their objects are gone)."""
    result = await uow.session.execute(
        sa.text(f"DELETE FROM {TABLE} WHERE user_id = :u"), {"u": user_id}
    )
    return int(result.rowcount or 0)


def legacy_prefix(top: str, user_id: str) -> str | None:
    """Where objects of ``user_id`` under ``top`` were stored before owner keys; None when the
    id has a ``/`` (the prefix could then hold someone else's objects)."""
    return None if "/" in user_id else f"{top}/{user_id}/"


def rekeyed(key: str | None, user_id: str, owner: str) -> str | None:
    """The owner-key form of ``key`` if it is an old ``<top>/<user id>/…`` key, else None."""
    if not key or "/" in user_id:
        return None
    top, _, rest = key.partition("/")
    if not rest.startswith(f"{user_id}/"):
        return None
    return f"{top}/{owner}/{rest[len(user_id) + 1 :]}"


async def move_object(storage: Storage, old: str, new: str) -> None:
    """Copy ``old`` to ``new`` unless that was done already (``old`` gone, ``new`` there); the
    caller points its row at ``new`` and deletes ``old`` afterwards."""
    try:
        await storage.copy(old, new)
    except S3Error as exc:
        if not is_missing(exc):
            raise


# A service's mover: for one legacy owner, move every object its rows name; True once none is
# left on an old key (False: something is busy, try again next run).
RowMover = Callable[[str, str], Awaitable[bool]]


class LegacyKeys:
    """Moves a service's objects off user-id keys, ``batch`` legacy owners a run."""

    def __init__(
        self,
        db: Database,
        storage: Storage,
        *,
        tops: Sequence[str],
        move_rows: RowMover,
        batch: int,
    ) -> None:
        self.db = db
        self.storage = storage
        self.tops = tuple(tops)
        self.move_rows = move_rows
        self.batch = batch

    async def run_once(self) -> int:
        """Move the next owners' objects; how many owners are done."""
        async with self.db.uow(system=True) as uow:
            owners = (
                await uow.session.execute(
                    sa.text(
                        f"SELECT user_id, key FROM {TABLE} WHERE legacy "
                        "ORDER BY created_at LIMIT :n"
                    ),
                    {"n": self.batch},
                )
            ).all()
        done = 0
        for user_id, owner in owners:
            if not await self.move_rows(user_id, owner):
                continue
            # Whatever is still under an old prefix is a copy already moved (a crash between
            # a row's update and the old object's deletion) or named by no row.
            for top in self.tops:
                prefix = legacy_prefix(top, user_id)
                if prefix is not None:
                    await self.storage.delete_prefix(prefix)
            async with self.db.uow(user_id) as uow:
                await uow.session.execute(
                    sa.text(f"UPDATE {TABLE} SET legacy = false WHERE user_id = :u"),
                    {"u": user_id},
                )
                await uow.commit()
            done += 1
        if done:
            log.info("storage.legacy_keys_moved", owners=done)
        return done


class LegacyRows(abc.ABC):
    """A service's :data:`RowMover`: its rows that name objects under ``tops``, moved to
    owner keys by :meth:`move_owned`, and the periodic :class:`LegacyKeys` run over them
    (:meth:`job`)."""

    tops: ClassVar[tuple[str, ...]]

    def __init__(self, db: Database, storage: Storage) -> None:
        self.db = db
        self.storage = storage

    async def move_rows(self, user_id: str, owner: str) -> bool:
        """Move what the user's rows name; True once nothing is left on an old key."""
        if "/" in user_id:
            return True  # never stored under a prefix of its own: nothing to move
        return await self.move_owned(user_id, owner)

    @abc.abstractmethod
    async def move_owned(self, user_id: str, owner: str) -> bool:
        """:meth:`move_rows` for a user whose objects may be under ``<top>/<user id>/``."""

    def job(self, batch: int) -> LegacyKeys:
        return LegacyKeys(
            self.db, self.storage, tops=self.tops, move_rows=self.move_rows, batch=batch
        )
