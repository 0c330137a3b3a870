"""``rate_buckets`` and the edge's one admission call, ``edge_admit`` (migration 0002): GCRA
buckets in Postgres and the erasure block, one round trip per request."""

from __future__ import annotations

from typing import Any

from visiona.kit.db import Database

_ADMIT = (
    "SELECT verdict, quota, remaining, reset_s, retry_after_s "
    "FROM edge_admit(%s, %s, %s, %s, %s, %s, %s, %s)"
)


async def admit(
    db: Database,
    *,
    ip_key: str | None,
    ip_interval_s: float | None,
    ip_burst: int,
    user_id: str | None,
    user_key: str | None,
    user_interval_s: float | None,
    user_burst: int,
    check_erasure: bool,
) -> tuple[Any, ...]:
    """``(verdict, quota, remaining, reset_s, retry_after_s)``; a bucket whose key is None is
    not checked."""
    async with db.single_statement() as conn:
        cursor = await conn.execute(
            _ADMIT,
            (
                ip_key,
                ip_interval_s,
                ip_burst,
                user_id,
                user_key,
                user_interval_s,
                user_burst,
                check_erasure,
            ),
        )
        row = await cursor.fetchone()
    assert row is not None
    return tuple(row)


async def sweep(db: Database) -> int:
    """Delete full buckets (their tat has passed): the same as no row at all."""
    async with db.single_statement() as conn:
        cursor = await conn.execute("DELETE FROM rate_buckets WHERE tat < now()")
        return cursor.rowcount
