"""A prompts schema of its own (fresh database, migrated) and LLM emulators on free ports,
for the service tests: real PostgreSQL, the real SDKs over real HTTP."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from visiona.emulators import anthropic as anthropic_emulator
from visiona.emulators import openai as openai_emulator
from visiona.emulators._server import running
from visiona.emulators.stack import role_url
from visiona.kit import migrations
from visiona.kit.db import Database
from visiona.kit.provision import drop, provision

ADMIN_URL = os.environ.get(
    "VISIONA_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


@dataclass
class PromptsDb:
    app_url: str
    admin_url: str

    def db(self, pool_size: int = 4) -> Database:
        return Database(self.app_url, "prompts", pool_size=pool_size)

    def sql(self, query: str, *params: object) -> list[tuple[object, ...]]:
        """Inspect as a superuser (row-level security does not apply)."""
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute("SET search_path TO prompts")
            cur = conn.execute(query, params or None)
            return cur.fetchall() if cur.description else []


@pytest.fixture(scope="session")
def prompts_db() -> Iterator[PromptsDb]:
    run = uuid.uuid4().hex[:8]
    name = f"visiona_prompts_{run}"
    (roles,) = provision(ADMIN_URL, name, services=["prompts"], suffix=f"_t{run}")
    migrations.upgrade(MIGRATIONS, role_url(ADMIN_URL, roles.migrator, name), "prompts")
    try:
        yield PromptsDb(
            app_url=role_url(ADMIN_URL, roles.app, name),
            admin_url=psycopg.conninfo.make_conninfo(ADMIN_URL, dbname=name),
        )
    finally:
        drop(ADMIN_URL, name, [roles])


@pytest.fixture
async def db(prompts_db: PromptsDb) -> AsyncIterator[Database]:
    database = prompts_db.db()
    try:
        yield database
    finally:
        await database.dispose()


@dataclass
class Emulator:
    """An LLM emulator running in this process; ``url`` is its root (no /v1)."""

    url: str

    def control(self, path: str, body: dict[str, Any] | None = None) -> Any:
        if body is None:
            response = httpx.get(f"{self.url}/_emulator/{path}")
        else:
            response = httpx.post(f"{self.url}/_emulator/{path}", json=body)
        response.raise_for_status()
        return response.json()

    @property
    def calls(self) -> int:
        return int(self.control("requests")["count"])


@pytest.fixture(scope="session")
def openai_server() -> Iterator[Emulator]:
    with running(openai_emulator.create_app(openai_emulator.Settings())) as url:
        yield Emulator(url)


@pytest.fixture(scope="session")
def anthropic_server() -> Iterator[Emulator]:
    with running(anthropic_emulator.create_app(anthropic_emulator.Settings())) as url:
        yield Emulator(url)


@pytest.fixture
def openai_emulator_reset(openai_server: Emulator) -> Iterator[Emulator]:
    openai_server.control("reset", {})
    yield openai_server
    openai_server.control("reset", {})


@pytest.fixture
def anthropic_emulator_reset(anthropic_server: Emulator) -> Iterator[Emulator]:
    anthropic_server.control("reset", {})
    yield anthropic_server
    anthropic_server.control("reset", {})
