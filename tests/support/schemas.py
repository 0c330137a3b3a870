"""A fresh database holding one service's schema, migrated, with that service's roles.

What a service test needs to run a service's code in process as production runs it: the app
role (never owner, superuser or BYPASSRLS) and the migrator that owns the schema. Every
database is named ``visiona_<schema>_<run>_<tag>`` (the connection watcher counts by the run)
and is dropped with its roles afterwards.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import psycopg
import pytest

from tests.support.infra import Infra
from visiona.emulators.stack import role_url
from visiona.kit import migrations
from visiona.kit.db import Database
from visiona.kit.provision import ServiceRoles, drop, provision

SERVICES_DIR = Path(__file__).resolve().parents[2] / "services"
Role = Literal["admin", "migrator", "app"]


@dataclass
class SchemaDb:
    """A migrated schema: ``app_url`` is what the service runs as (SQLAlchemy URL)."""

    admin_url: str  # libpq conninfo of the server's superuser, on this database
    app_url: str
    migrator_url: str
    roles: ServiceRoles
    database: str

    @property
    def schema(self) -> str:
        return self.roles.schema

    def db(self, pool_size: int = 2, max_overflow: int = 2) -> Database:
        """The service's own view (row-level security applies). Dispose of it afterwards."""
        return Database(self.app_url, self.schema, pool_size=pool_size, max_overflow=max_overflow)

    @contextlib.asynccontextmanager
    async def opened(self) -> AsyncIterator[Database]:
        """``db()`` for the block, disposed of afterwards."""
        db = self.db()
        try:
            yield db
        finally:
            await db.dispose()

    def sql(self, query: str, *params: object, as_role: Role = "admin") -> list[Any]:
        """Run SQL on the schema: as a superuser (no row-level security) unless asked to act
        as the schema's owner or the app role."""
        conninfo = {
            "admin": self.admin_url,
            "migrator": self.migrator_url.replace("+psycopg", ""),
            "app": self.app_url.replace("+psycopg", ""),
        }[as_role]
        with psycopg.connect(
            conninfo, autocommit=True, options=f"-c search_path={self.schema}"
        ) as conn:
            cur = conn.execute(query, params or None)
            return cur.fetchall() if cur.description else []


@contextlib.contextmanager
def fresh_schema(
    infra: Infra, run: str, service: str, *, ddl: str | None = None
) -> Iterator[SchemaDb]:
    """``service``'s schema in a new database, migrated with the service's own migrations
    (``services/<service>/migrations``), or built from ``ddl`` run as its owner."""
    tag = uuid.uuid4().hex[:6]
    database = f"visiona_{service}_{run}_{tag}"
    (roles,) = provision(infra.admin_url, database, services=[service], suffix=f"_{run}{tag}")
    migrator = role_url(infra.admin_url, roles.migrator, database)
    created = SchemaDb(
        admin_url=psycopg.conninfo.make_conninfo(infra.admin_url, dbname=database),
        app_url=role_url(infra.admin_url, roles.app, database),
        migrator_url=migrator,
        roles=roles,
        database=database,
    )
    try:
        if ddl is None:
            migrations.upgrade(SERVICES_DIR / service / "migrations", migrator, roles.schema)
        else:
            created.sql(ddl, as_role="migrator")
        yield created
    finally:
        drop(infra.admin_url, database, [roles])


def schema_fixture(service: str, *, scope: Literal["session", "module"], doc: str = "") -> Any:
    """A pytest fixture yielding :func:`fresh_schema` of ``service`` for the ``scope``:
    ``billing_db = schema_fixture("billing", scope="session")`` in a conftest or test module."""

    def fixture(infra: Infra, run_id: str) -> Iterator[SchemaDb]:
        with fresh_schema(infra, run_id, service) as created:
            yield created

    fixture.__doc__ = doc or f"The {service} service's schema, migrated, for the {scope}."
    return pytest.fixture(scope=scope)(fixture)
