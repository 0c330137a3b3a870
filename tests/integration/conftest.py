"""Fixtures for the kit integration tests (``kit_database``, ``bus`` and ``storage`` come from
tests/support/plugin.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.support.infra import Infra
from tests.support.schemas import SchemaDb, schema_fixture

from .support import Kit


@pytest.fixture
async def kit(infra: Infra, kit_database: SchemaDb) -> AsyncIterator[Kit]:
    """The session's kit schema, emptied, so no other test's outbox rows reach this test's bus."""
    app_url = make_url(kit_database.app_url)
    admin = psycopg.conninfo.conninfo_to_dict(infra.admin_url)
    password = admin.get("password")
    kit = Kit(
        db=kit_database.db(),
        app_url=kit_database.app_url,
        migrator_url=kit_database.migrator_url,
        superuser_url=app_url.set(
            username=str(admin.get("user", "postgres")),
            password=None if password is None else str(password),
        ).render_as_string(hide_password=False),
        admin_url=kit_database.admin_url,
        schema=kit_database.schema,
    )
    s = kit.schema
    await kit.admin(f"TRUNCATE {s}.outbox, {s}.inbox, {s}.effects")
    try:
        yield kit
    finally:
        await kit.db.dispose()


training_schema = schema_fixture(
    "training",
    scope="module",
    doc="The training service's schema, migrated, in a database of its own for the module.",
)
