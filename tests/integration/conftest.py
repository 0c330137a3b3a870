"""Fixtures for the kit integration tests (the ``kit_database`` and ``bus`` come from above)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from visiona.kit.storage import Storage

from .support import Kit

ADMIN_URL = os.environ.get(
    "VISIONA_ADMIN_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture
async def kit(kit_database: Any) -> AsyncIterator[Kit]:
    """The session's kit schema, emptied, so no other test's outbox rows reach this test's bus."""
    app_url = make_url(kit_database.app_url)
    admin = psycopg.conninfo.conninfo_to_dict(ADMIN_URL)
    password = admin.get("password")
    kit = Kit(
        db=kit_database.db(),
        app_url=kit_database.app_url,
        migrator_url=kit_database.migrator_url,
        superuser_url=app_url.set(
            username=str(admin.get("user", "postgres")),
            password=None if password is None else str(password),
        ).render_as_string(hide_password=False),
        admin_url=psycopg.conninfo.make_conninfo(ADMIN_URL, dbname=app_url.database),
        schema=kit_database.schema,
    )
    s = kit.schema
    await kit.admin(f"TRUNCATE {s}.outbox, {s}.inbox, {s}.effects")
    try:
        yield kit
    finally:
        await kit.db.dispose()


@pytest.fixture(scope="module")
async def storage(stack: Any) -> AsyncIterator[Storage]:
    """A bucket of the session's S3 for one test module, emptied and removed afterwards."""
    s3 = stack.cfg.s3
    storage = Storage(s3.endpoint, s3.access_key, s3.secret_key, f"it-{uuid.uuid4().hex}")
    await storage.ensure_bucket()
    try:
        yield storage
    finally:
        client = storage.client
        for obj in client.list_objects(storage.bucket, recursive=True):
            client.remove_object(storage.bucket, obj.object_name)
        client.remove_bucket(storage.bucket)
