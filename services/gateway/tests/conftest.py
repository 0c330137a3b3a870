"""The gateway in process needs what it needs in production: its own schema (migrated, under
an app role that cannot bypass row-level security) and the broker. Databases and exchanges
are fresh and removed afterwards."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from tests.conftest import ADMIN_URL, AMQP_URL, purge_broker
from visiona.emulators.stack import role_url
from visiona.gateway.__main__ import MIGRATIONS
from visiona.kit import migrations
from visiona.kit.db import Database
from visiona.kit.provision import ServiceRoles, drop, provision


@dataclass
class GatewayDb:
    """A migrated gateway schema: the app role's URL (what the gateway runs as); ``sql`` looks
    as a superuser (no row-level security) unless asked to act as the app role."""

    app_url: str
    migrator_url: str
    roles: ServiceRoles
    database: str
    schema: str = "gateway"

    def db(self) -> Database:
        return Database(self.app_url, self.schema, pool_size=4)

    def sql(self, query: str, *params: object, as_role: str = "admin") -> list[Any]:
        if as_role == "app":
            conninfo = self.app_url.replace("+psycopg", "")
        else:
            conninfo = psycopg.conninfo.make_conninfo(ADMIN_URL, dbname=self.database)
        with psycopg.connect(
            conninfo, autocommit=True, options=f"-c search_path={self.schema}"
        ) as c:
            cur = c.execute(query, params or None)
            return cur.fetchall() if cur.description else []


def _new_gateway_db() -> GatewayDb:
    tag = uuid.uuid4().hex[:8]
    database = f"visiona_gw_{tag}"
    (roles,) = provision(ADMIN_URL, database, services=["gateway"], suffix=f"_g{tag}")
    migrator = role_url(ADMIN_URL, roles.migrator, database)
    migrations.upgrade(MIGRATIONS, migrator, roles.schema)
    return GatewayDb(role_url(ADMIN_URL, roles.app, database), migrator, roles, database)


@pytest.fixture(scope="session")
def gateway_db() -> Iterator[GatewayDb]:
    """One migrated gateway schema for the session's unit tests (they use unique keys)."""
    created = _new_gateway_db()
    try:
        yield created
    finally:
        drop(ADMIN_URL, created.database, [created.roles])


@pytest.fixture
def gateway_backing() -> Iterator[dict[str, Any]]:
    """GatewaySettings fields for a whole gateway in process: a fresh schema and exchange."""
    created = _new_gateway_db()
    tag = created.database.removeprefix("visiona_gw_")
    try:
        yield {
            "database_url": created.app_url,
            "amqp_url": AMQP_URL,
            "events_exchange": f"visiona.events.g{tag}",
            "queue_prefix": f"g{tag}.",
            "pseudonym_key": secrets.token_urlsafe(32),
            "internal_token_secret": secrets.token_urlsafe(32),
        }
    finally:
        drop(ADMIN_URL, created.database, [created.roles])
        asyncio.run(purge_broker((f"g{tag}.", f"visiona.events.g{tag}")))
