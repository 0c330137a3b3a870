"""Row-level security through the kit: the app role sees and writes only the current user's
rows, and the start-up check refuses roles that could read past RLS."""

from __future__ import annotations

import uuid

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from visiona.kit.db import Database

from .events import ProbeHappenedV1
from .support import Kit, insert_effect


async def effects_seen(db: Database, user_id: str | None) -> int:
    async with db.uow(user_id) as uow:
        return int(
            (await uow.session.execute(sa.text("SELECT count(*) FROM effects"))).scalar_one()
        )


async def effect_of_alice(kit: Kit) -> ProbeHappenedV1:
    event = ProbeHappenedV1(user_id="alice", n=7)
    async with kit.db.uow("alice") as uow:
        await insert_effect(event, uow)
        await uow.commit()
    assert await kit.count("effects", [event]) == 1
    return event


async def test_owner_sees_own_rows(kit: Kit) -> None:
    await effect_of_alice(kit)

    assert await effects_seen(kit.db, "alice") == 1


async def test_rows_are_invisible_without_a_user(kit: Kit) -> None:
    await effect_of_alice(kit)

    assert await effects_seen(kit.db, None) == 0


async def test_rows_are_invisible_to_another_user(kit: Kit) -> None:
    await effect_of_alice(kit)

    assert await effects_seen(kit.db, "bob") == 0


async def test_another_user_cannot_change_or_delete_rows(kit: Kit) -> None:
    event = await effect_of_alice(kit)

    async with kit.db.uow("bob") as uow:
        updated = await uow.session.execute(sa.text("UPDATE effects SET n = n + 1"))
        deleted = await uow.session.execute(sa.text("DELETE FROM effects"))
        await uow.commit()

    assert (updated.rowcount, deleted.rowcount) == (0, 0)  # type: ignore[attr-defined]
    assert await kit.admin("SELECT n FROM kittest.effects WHERE event_id = %s", event.event_id) == [
        (7,)
    ]


async def test_user_cannot_write_rows_for_another_user(kit: Kit) -> None:
    event = ProbeHappenedV1(user_id="alice", n=1)

    with pytest.raises(DBAPIError, match="row-level security"):
        async with kit.db.uow("bob") as uow:
            await insert_effect(event, uow)
            await uow.commit()

    assert await kit.count("effects", [event]) == 0


async def test_app_role_passes_the_rls_bypass_check(kit: Kit) -> None:
    await kit.db.assert_rls_cannot_be_bypassed()


async def test_table_owner_fails_the_rls_bypass_check(kit: Kit) -> None:
    owner = Database(kit.migrator_url, kit.schema, pool_size=1)
    try:
        with pytest.raises(RuntimeError, match=r"owns RLS table kittest\.effects"):
            await owner.assert_rls_cannot_be_bypassed()
    finally:
        await owner.dispose()


async def test_superuser_fails_the_rls_bypass_check(kit: Kit) -> None:
    superuser = Database(kit.superuser_url, kit.schema, pool_size=1)
    try:
        with pytest.raises(RuntimeError, match="is a superuser"):
            await superuser.assert_rls_cannot_be_bypassed()
    finally:
        await superuser.dispose()


async def test_unforced_rls_table_fails_the_rls_bypass_check(kit: Kit) -> None:
    table = f"unforced_{uuid.uuid4().hex[:8]}"
    owner = psycopg.conninfo.make_conninfo(kit.migrator_url.replace("+psycopg", ""))
    async with await psycopg.AsyncConnection.connect(owner, autocommit=True) as conn:
        await conn.execute(f"CREATE TABLE {kit.schema}.{table} (user_id text NOT NULL)")
        try:
            await conn.execute(f"ALTER TABLE {kit.schema}.{table} ENABLE ROW LEVEL SECURITY")
            with pytest.raises(RuntimeError, match=rf"RLS on kittest\.{table} is not FORCEd"):
                await kit.db.assert_rls_cannot_be_bypassed()
        finally:
            await conn.execute(f"DROP TABLE {kit.schema}.{table}")
