"""SQLAlchemy 2 async on psycopg 3; the unit of work is the only thing that commits.

Every connection's ``search_path`` is the service's own schema. A unit of work opened for a
user sets ``app.user_id`` for that transaction only (``set_config(..., true)``), which is what
the row-level-security policies read; one opened without a user sees no user-owned rows.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Any, Self

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from visiona.kit.events import Event
from visiona.kit.settings import ServiceSettings
from visiona.kit.telemetry import inject_headers

# The outbox (and the inbox, used through SQL in claim_inbox) live in each service's own
# schema; connections find them on search_path. DDL: kit.migrations.outbox_inbox_ddl.
kit_metadata = sa.MetaData()

outbox_table = sa.Table(
    "outbox",
    kit_metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),
    sa.Column("routing_key", sa.Text, nullable=False),
    sa.Column("payload", JSONB, nullable=False),
    sa.Column("headers", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("published_at", sa.DateTime(timezone=True)),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column(
        "next_attempt_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("last_error", sa.Text),
)


def _json(value: Any) -> str:
    return json.dumps(value, default=str, separators=(",", ":"))


class Database:
    """One engine per process, bound to the service's schema.

    At most ``pool_size + max_overflow`` connections are open at once (the outbox relay's
    LISTEN adds one more); past that a unit of work waits up to ``pool_timeout_s`` for one to
    come back. Size them against the server's ``max_connections`` (deploy/k8s/README.md).
    """

    def __init__(
        self,
        url: str,
        schema: str,
        *,
        pool_size: int = 10,
        max_overflow: int | None = None,
        pool_timeout_s: float = 30.0,
    ) -> None:
        self.url = url
        self.schema = schema
        self.max_connections = pool_size + (pool_size if max_overflow is None else max_overflow)
        self.engine: AsyncEngine = create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size if max_overflow is None else max_overflow,
            pool_timeout=pool_timeout_s,
            # No pre-ping: it would add a round trip to every unit of work. A connection the
            # server dropped fails its one transaction (retried by the caller or redelivered)
            # and is discarded; recycling bounds how stale a pooled connection gets.
            pool_recycle=1800,
            json_serializer=_json,
            # Statement parameters (user ids, prompts) must never reach logs via exceptions.
            hide_parameters=True,
            connect_args={"options": f"-c search_path={schema}"},
        )

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> Database:
        return cls(
            settings.database_url.get_secret_value(),
            settings.db_schema,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_pool_overflow,
            pool_timeout_s=settings.db_pool_timeout_s,
        )

    def uow(self, user_id: str | None = None, *, system: bool = False) -> UnitOfWork:
        """A unit of work; pass the user whose rows it may touch (RLS), or None.

        ``system=True`` declares the system principal for the transaction: tables whose RLS
        has a ``system_read`` policy become readable across users (never writable).
        """
        return UnitOfWork(self.engine, user_id, system=system)

    @contextlib.asynccontextmanager
    async def single_statement(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """The pooled psycopg connection itself, in autocommit: each statement is its own
        transaction and one round trip (no BEGIN, no COMMIT), without SQLAlchemy's per-call
        machinery. For a hot path whose whole effect fits one statement (data-modifying
        CTEs; stage events with :func:`outbox_values`). psycopg placeholders (``%(name)s``).
        No user context: a statement on user-owned rows sets ``app.user_id`` itself.
        """
        async with self.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver: psycopg.AsyncConnection[Any] = raw.driver_connection  # type: ignore[assignment]
            await driver.set_autocommit(True)
            try:
                yield driver
            finally:
                await driver.set_autocommit(False)

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()

    async def assert_rls_cannot_be_bypassed(self) -> None:
        """Refuse to run as a role that could read past row-level security.

        The role must not be superuser or BYPASSRLS, must not own (or be a member of the owner
        of) any RLS table in its schema, and every RLS table must be FORCEd.
        """
        async with self.engine.connect() as conn:
            role = (
                await conn.execute(
                    sa.text(
                        "SELECT current_user AS name, rolsuper, rolbypassrls "
                        "FROM pg_roles WHERE rolname = current_user"
                    )
                )
            ).one()
            problems: list[str] = []
            if role.rolsuper:
                problems.append(f"role {role.name} is a superuser")
            if role.rolbypassrls:
                problems.append(f"role {role.name} has BYPASSRLS")
            rows = await conn.execute(
                sa.text(
                    "SELECT c.relname, c.relforcerowsecurity AS forced, "
                    "pg_has_role(current_user, c.relowner, 'MEMBER') AS owns "
                    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = :schema AND c.relkind IN ('r', 'p') "
                    "AND c.relrowsecurity"
                ),
                {"schema": self.schema},
            )
            for row in rows:
                if row.owns:
                    problems.append(f"role {role.name} owns RLS table {self.schema}.{row.relname}")
                if not row.forced:
                    problems.append(f"RLS on {self.schema}.{row.relname} is not FORCEd")
        if problems:
            raise RuntimeError("row-level security could be bypassed: " + "; ".join(problems))


class UnitOfWork:
    """One transaction. Use cases stage events with ``emit``; ``commit`` writes them to the
    outbox in the same transaction as the state change. Leaving without commit rolls back.

    ``session`` is a SQLAlchemy Core connection (``execute`` takes Core statements and
    ``text()``); no ORM session sits in between, which costs CPU on every unit of work and
    buys nothing here (no identity map, no flush). Hot paths can run psycopg statements on
    the same transaction through :meth:`driver`.
    """

    def __init__(self, engine: AsyncEngine, user_id: str | None, *, system: bool = False) -> None:
        self._engine = engine
        self.user_id = user_id
        self.system = system
        self._events: list[tuple[Event, dict[str, str]]] = []
        self._after_commit: list[Callable[[], None]] = []
        self._conn: AsyncConnection | None = None
        self._driver: psycopg.AsyncConnection[Any] | None = None

    @property
    def session(self) -> AsyncConnection:
        if self._conn is None:
            raise RuntimeError("unit of work used outside `async with`")
        return self._conn

    async def driver(self) -> psycopg.AsyncConnection[Any]:
        """The psycopg connection under this unit of work, in its transaction (psycopg
        placeholders). Statements sent here skip SQLAlchemy's per-call machinery."""
        if self._driver is None:
            self._driver = await driver_of(self.session)
        return self._driver

    async def __aenter__(self) -> Self:
        self._conn = await self._engine.connect()
        await self._conn.begin()
        if self.system:
            await self._conn.execute(
                _SET_PRINCIPAL, {"user_id": self.user_id or "", "principal": "system"}
            )
        elif self.user_id is not None:
            await self._conn.execute(_SET_USER, {"user_id": self.user_id})
        return self

    async def act_as(self, user_id: str | None, *, system: bool = False) -> None:
        """Switch, for the rest of this transaction, whose rows it touches (and whether it is
        the system principal): a webhook handler finds the owner as the system, then writes as
        the owner, in one transaction with its inbox claim.
        """
        await self.session.execute(
            _SET_PRINCIPAL, {"user_id": user_id or "", "principal": "system" if system else ""}
        )
        self.user_id, self.system = user_id, system

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn, self._driver = self._conn, None, None
        if conn is not None:
            if conn.in_transaction():
                await conn.rollback()
            await conn.close()

    def emit(self, event: Event) -> None:
        """Stage an event; it is written to the outbox when (and only if) this unit commits."""
        self._events.append((event, inject_headers()))

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once this unit has committed (never if it rolls back): e.g. wake
        a worker for the rows it just made due, which it could not see before the commit."""
        self._after_commit.append(callback)

    async def commit(self) -> None:
        if self._events:
            rows = [outbox_values(event, headers) for event, headers in self._events]
            driver = await self.driver()
            async with driver.cursor() as cur:
                await cur.executemany(
                    _INSERT_OUTBOX,
                    [
                        (r["event_id"], r["routing_key"], _json(r["payload"]), _json(r["headers"]))
                        for r in rows
                    ],
                )
            self._events.clear()
        await self.session.commit()
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()


async def driver_of(conn: AsyncConnection) -> psycopg.AsyncConnection[Any]:
    """The psycopg connection under a SQLAlchemy connection (same session, same transaction)."""
    raw = await conn.get_raw_connection()
    driver: psycopg.AsyncConnection[Any] = raw.driver_connection  # type: ignore[assignment]
    return driver


_INSERT_OUTBOX = (
    "INSERT INTO outbox (event_id, routing_key, payload, headers) "
    "VALUES (%s, %s, %s::jsonb, %s::jsonb)"
)


def outbox_values(event: Event, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """The outbox row of ``event`` (with the current trace context unless ``headers``)."""
    return {
        "event_id": event.event_id,
        "routing_key": event.routing_key,
        "payload": event.model_dump(mode="json"),
        "headers": inject_headers() if headers is None else headers,
    }


# Hot-path statements are built once: constructing a text() clause parses it every time.
_CLAIM_INBOX = (
    "WITH ctx AS (SELECT set_config('app.user_id', %s, true)) "
    "INSERT INTO inbox (consumer, event_id, routing_key) SELECT %s, %s, %s FROM ctx "
    "ON CONFLICT DO NOTHING RETURNING 1"
)
_SET_USER = sa.select(sa.func.set_config("app.user_id", sa.bindparam("user_id"), True))
_SET_PRINCIPAL = sa.select(
    sa.func.set_config("app.user_id", sa.bindparam("user_id"), True),
    sa.func.set_config("app.principal", sa.bindparam("principal"), True),
)


async def claim_inbox(uow: UnitOfWork, consumer: str, event: Event) -> bool:
    """Record that ``consumer`` handles ``event`` in the unit of work's transaction.

    The same statement sets ``app.user_id`` to the event's user for the rest of the
    transaction (one round trip instead of two per message; the unit of work is opened
    without a user for this reason). False means an earlier delivery already committed its
    effect: skip the handler.
    """
    driver = await uow.driver()
    cursor = await driver.execute(
        _CLAIM_INBOX, (event.user_id or "", consumer, event.event_id, event.routing_key)
    )
    claimed = await cursor.fetchone() is not None
    uow.user_id = event.user_id
    return claimed
