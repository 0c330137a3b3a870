"""A prompts schema of its own (fresh database, migrated) and LLM emulators on free ports,
for the service tests: real PostgreSQL, the real SDKs over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support.schemas import SchemaDb, schema_fixture
from visiona.emulators import anthropic as anthropic_emulator
from visiona.emulators import openai as openai_emulator
from visiona.emulators._server import running
from visiona.kit.db import Database

prompts_db = schema_fixture("prompts", scope="session")


@pytest.fixture
async def db(prompts_db: SchemaDb) -> AsyncIterator[Database]:
    async with prompts_db.opened() as database:
        yield database


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
