"""A billing schema of its own (fresh database, migrated) for the ledger tests."""

from __future__ import annotations

from tests.support.schemas import schema_fixture

billing_db = schema_fixture("billing", scope="session")
