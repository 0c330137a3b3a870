"""A billing schema of its own (fresh database, migrated) for the ledger tests."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from visiona.emulators.stack import role_url
from visiona.kit import migrations
from visiona.kit.db import Database
from visiona.kit.provision import drop, provision

ADMIN_URL = os.environ.get(
    "VISIONA_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


@dataclass
class BillingDb:
    app_url: str
    migrator_url: str
    admin_url: str

    def db(self, pool_size: int = 8) -> Database:
        return Database(self.app_url, "billing", pool_size=pool_size)

    def sql(self, query: str, *params: object, as_role: str = "admin") -> list[tuple[object, ...]]:
        url = {"admin": self.admin_url, "migrator": self.migrator_url, "app": self.app_url}[as_role]
        with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute("SET search_path TO billing")
            cur = conn.execute(query, params or None)
            return cur.fetchall() if cur.description else []


@pytest.fixture(scope="session")
def billing_db() -> Iterator[BillingDb]:
    run = uuid.uuid4().hex[:8]
    name = f"visiona_billing_{run}"
    (roles,) = provision(ADMIN_URL, name, services=["billing"], suffix=f"_t{run}")
    migrator = role_url(ADMIN_URL, roles.migrator, name)
    migrations.upgrade(MIGRATIONS, migrator, "billing")
    try:
        yield BillingDb(
            app_url=role_url(ADMIN_URL, roles.app, name),
            migrator_url=migrator,
            admin_url=psycopg.conninfo.make_conninfo(ADMIN_URL, dbname=name),
        )
    finally:
        drop(ADMIN_URL, name, [roles])
