"""Fixtures for cross-service tests, on this machine's real PostgreSQL, RabbitMQ and S3.

Every run is isolated: a fresh database and fresh roles (suffix ``_t<run>``), its own exchange
and queue names, SeaweedFS on free ports in a temporary folder; all removed afterwards.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests import infra
from visiona.emulators.clerk import DevIssuer, load_or_create_key
from visiona.emulators.stack import (
    WEED_PORTS,
    LocalStack,
    S3Config,
    StackConfig,
    check_postgres,
    check_rabbitmq,
    free_port,
    role_url,
)
from visiona.kit.bus import EventBus
from visiona.kit.db import Database
from visiona.kit.migrations import outbox_inbox_ddl, user_rls_ddl
from visiona.kit.provision import SERVICES, drop, provision

# Decided at import, before any fixture or nested conftest reads the URLs from the environment.
INFRA = infra.start()
ADMIN_URL = INFRA.admin_url
AMQP_URL = INFRA.amqp_url
RUN = uuid.uuid4().hex[:8]


def pytest_sessionstart(session: pytest.Session) -> None:
    problems = [p for p in (check_postgres(ADMIN_URL), check_rabbitmq(AMQP_URL)) if p]
    if problems:
        raise pytest.UsageError("\n".join(problems))


def pytest_unconfigure(config: pytest.Config) -> None:
    infra.stop()


async def purge_broker(prefixes: tuple[str, ...]) -> None:
    """Delete this run's queues and exchanges (rabbitmqctl lists them; names are unique)."""
    import aio_pika

    names: dict[str, list[str]] = {}
    for kind in ("queues", "exchanges"):
        listed = await asyncio.to_thread(INFRA.rabbitmqctl, ["-q", f"list_{kind}", "name"])
        names[kind] = [n for n in listed.split() if n.startswith(prefixes)]
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        for queue in names["queues"]:
            await channel.queue_delete(queue)
        for exchange in names["exchanges"]:
            await channel.exchange_delete(exchange)


@dataclass
class RunningStack:
    cfg: StackConfig
    processes: LocalStack
    issuer: DevIssuer

    @property
    def url(self) -> str:
        return self.cfg.gateway_url

    def token(self, user: str, **kwargs: object) -> str:
        return self.issuer.issue(user, **kwargs)  # type: ignore[arg-type]

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user)}"}

    def service_url(self, service: str) -> str:
        """libpq URL of a service's app role (what the service itself connects as)."""
        return self.cfg.database_url(self.cfg.roles(service).app).replace("+psycopg", "")

    def admin_sql(self, query: str, *params: object) -> list[tuple[object, ...]]:
        """Inspect the run's database as a superuser (RLS does not apply)."""
        url = psycopg.conninfo.make_conninfo(ADMIN_URL, dbname=self.cfg.database)
        with psycopg.connect(url, autocommit=True) as conn:
            cur = conn.execute(query, params or None)
            return cur.fetchall() if cur.description else []


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """The whole platform as processes, on free ports, for this run only."""
    state = tmp_path_factory.mktemp("stack")
    names = [
        *("gateway", "prompts", "training", "generation", "billing"),
        *("anthropic", "stripe", "replicate", "clerk", "s3"),
    ]
    ports = {name: free_port() for name in [*names, *WEED_PORTS]}
    cfg = StackConfig(
        admin_url=ADMIN_URL,
        database=f"visiona_test_{RUN}",
        amqp_url=AMQP_URL,
        ports=ports,
        state_dir=state,
        role_suffix=f"_t{RUN}",
        exchange=f"visiona.events.t{RUN}",
        queue_prefix=f"t{RUN}.",
        s3=S3Config(
            endpoint=f"127.0.0.1:{ports['s3']}", access_key="test", secret_key="test-secret"
        ),
        # A quiet training is asked about after 2 s (not minutes), so lost webhooks and
        # restarts show within a test.
        extra_env={
            "TRAINING_RECONCILE_QUIET_S": "2",
            "TRAINING_WORK_POLL_INTERVAL_S": "0.25",
            "TRAINING_WORK_LEASE_S": "3",
            "GENERATION_WORK_LEASE_S": "3",
            "GENERATION_RECONCILE_QUIET_S": "2",
            # Erasure and export sagas at test speed: a one-second grace, rounds asked again
            # after 10 s (a service killed mid-round), parts after 20 s.
            "GATEWAY_ERASURE_GRACE_S": "1",
            "GATEWAY_ERASURE_SETTLE_S": "0.5",
            "GATEWAY_ERASURE_ROUND_TIMEOUT_S": "10",
            "GATEWAY_EXPORT_PART_TIMEOUT_S": "20",
            "GATEWAY_SAGA_POLL_INTERVAL_S": "0.25",
            # The whole suite calls from 127.0.0.1 as a handful of users: rate limits far
            # above anything it does (test_edge starts gateways of its own with tight ones).
            "GATEWAY_IP_RATE_PER_S": "100000",
            "GATEWAY_IP_BURST": "100000",
            "GATEWAY_USER_RATE_PER_S": "100000",
            "GATEWAY_USER_BURST": "100000",
            "GATEWAY_WEBHOOK_RATE_PER_S": "100000",
            "GATEWAY_WEBHOOK_BURST": "100000",
        },
    )
    running = LocalStack(cfg)
    try:
        running.up()
        issuer = load_or_create_key(state / "clerk", issuer=cfg.clerk_issuer)
        yield RunningStack(cfg, running, issuer)
    finally:
        running.down()
        drop(
            ADMIN_URL,
            cfg.database,
            [cfg.roles(s) for s in SERVICES],
        )
        asyncio.run(purge_broker((f"t{RUN}.", f"visiona.events.t{RUN}")))


# --- a kit-only database for the reliability tests ----------------------------------------


KIT_SCHEMA = "kittest"


@dataclass
class KitDatabase:
    app_url: str
    migrator_url: str
    schema: str = KIT_SCHEMA

    def db(self) -> Database:
        return Database(self.app_url, self.schema, pool_size=4)

    def sql(self, query: str, *params: object) -> list[tuple[object, ...]]:
        """Run SQL as the schema owner (test bookkeeping, bypassing the app's view)."""
        with psycopg.connect(self.migrator_url.replace("+psycopg", ""), autocommit=True) as conn:
            cur = conn.execute(query, params or None)
            return cur.fetchall() if cur.description else []


@pytest.fixture(scope="session")
def kit_database() -> Iterator[KitDatabase]:
    """A database with one kit-shaped schema: outbox, inbox and an ``effects`` table (RLS)."""
    name = f"visiona_kit_{RUN}"
    (roles,) = provision(ADMIN_URL, name, services=[KIT_SCHEMA], suffix=f"_t{RUN}")
    migrator_url = role_url(ADMIN_URL, roles.migrator, name)
    app_url = role_url(ADMIN_URL, roles.app, name)
    with psycopg.connect(migrator_url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(outbox_inbox_ddl(KIT_SCHEMA))
        conn.execute(
            f"CREATE TABLE {KIT_SCHEMA}.effects (event_id uuid PRIMARY KEY, user_id text NOT NULL,"
            " n integer NOT NULL)"
        )
        conn.execute(user_rls_ddl(KIT_SCHEMA, "effects"))
    try:
        yield KitDatabase(app_url, migrator_url)
    finally:
        drop(ADMIN_URL, name, [roles])


@pytest.fixture
async def bus() -> AsyncIterator[EventBus]:
    """An event bus on an exchange and queue prefix unique to the test, removed afterwards."""
    tag = uuid.uuid4().hex[:8]
    exchange = f"visiona.events.k{RUN}{tag}"
    bus = EventBus(AMQP_URL, exchange, queue_prefix=f"k{RUN}{tag}.", delivery_limit=3, prefetch=16)
    await bus.connect()
    try:
        yield bus
    finally:
        await bus.close()
        await purge_broker((f"k{RUN}{tag}.", exchange))


@pytest.fixture(scope="session")
def repo() -> Path:
    return Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def stack_urls() -> tuple[str, str]:
    """The admin PostgreSQL URL and the AMQP URL this session uses."""
    return ADMIN_URL, AMQP_URL
