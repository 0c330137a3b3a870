"""The gateway in process needs what it needs in production: its own schema (migrated, under
an app role that cannot bypass row-level security) and the broker. Databases and exchanges
are fresh and removed afterwards."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.budget import IN_PROCESS_POOL
from tests.support.infra import Infra, purge_broker
from tests.support.schemas import fresh_schema, schema_fixture

gateway_db = schema_fixture(
    "gateway",
    scope="session",
    doc="One migrated gateway schema for the session's tests (they use unique keys).",
)


@pytest.fixture
def gateway_backing(infra: Infra, run_id: str) -> Iterator[dict[str, Any]]:
    """GatewaySettings fields for a whole gateway in process: a fresh schema and exchange."""
    with fresh_schema(infra, run_id, "gateway") as created:
        tag = created.database.rsplit("_", 1)[-1]
        exchange, prefix = f"visiona.events.g{run_id}{tag}", f"g{run_id}{tag}."
        try:
            yield {
                "database_url": created.app_url,
                "amqp_url": infra.amqp_url,
                "events_exchange": exchange,
                "queue_prefix": prefix,
                "pseudonym_key": secrets.token_urlsafe(32),
                "internal_token_secret": secrets.token_urlsafe(32),
                **IN_PROCESS_POOL,
            }
        finally:
            asyncio.run(purge_broker(infra, (prefix, exchange)))
