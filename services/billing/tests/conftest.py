"""A billing schema of its own (fresh database, migrated) for the ledger tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.infra import Infra
from tests.support.schemas import SchemaDb, fresh_schema


@pytest.fixture(scope="session")
def billing_db(infra: Infra, run_id: str) -> Iterator[SchemaDb]:
    with fresh_schema(infra, run_id, "billing") as created:
        yield created
