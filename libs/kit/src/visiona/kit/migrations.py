"""Alembic, per service: its own script folder, its own schema and version table.

Each service's ``migrations/env.py`` is one call to :func:`run_env`. Migrations run as the
schema's owner role (``<svc>_migrator``); the app role only gets DML through default privileges.

Alembic is imported where a migration runs, not here: a serving process imports this module
for its DDL (:func:`user_rls_ddl`, through visiona.kit.owners) and never migrates, and Alembic
is a third of a second of every start.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

if TYPE_CHECKING:
    from alembic.config import Config

VERSION_TABLE = "alembic_version"


def locate(package_file: str) -> Path:
    """A service's migrations: packaged next to its code in a wheel, else in its source tree."""
    here = Path(package_file).resolve().parent
    packaged = here / "migrations"
    return packaged if packaged.is_dir() else here.parents[2] / "migrations"


def alembic_config(migrations_dir: Path, url: str, schema: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["schema"] = schema
    return cfg


def upgrade(migrations_dir: Path, url: str, schema: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(migrations_dir, url, schema), revision)


def run_env() -> None:
    """The body of every service's ``env.py`` (online mode only: we always have a database)."""
    from alembic import context

    cfg = context.config
    schema: str = cfg.attributes["schema"]
    url = cfg.get_main_option("sqlalchemy.url")
    assert url is not None
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        connection.execute(sa.text(f'SET search_path TO "{schema}"'))
        connection.commit()
        context.configure(
            connection=connection,
            version_table=VERSION_TABLE,
            version_table_schema=schema,
            include_schemas=False,
            transaction_per_migration=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


# --- DDL helpers for migrations ------------------------------------------------------------


def outbox_inbox_ddl(schema: str) -> str:
    """The kit's outbox (with its NOTIFY trigger) and inbox tables, in ``schema``."""
    return f"""
        CREATE TABLE "{schema}".outbox (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            event_id uuid NOT NULL UNIQUE,
            routing_key text NOT NULL,
            payload jsonb NOT NULL,
            headers jsonb NOT NULL DEFAULT '{{}}'::jsonb,
            created_at timestamptz NOT NULL DEFAULT now(),
            published_at timestamptz,
            attempts integer NOT NULL DEFAULT 0,
            next_attempt_at timestamptz NOT NULL DEFAULT now(),
            last_error text
        );
        CREATE INDEX outbox_unpublished ON "{schema}".outbox (id) WHERE published_at IS NULL;
        CREATE INDEX outbox_published_at ON "{schema}".outbox (published_at)
            WHERE published_at IS NOT NULL;
        CREATE FUNCTION "{schema}".outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{schema}_outbox', '');
            RETURN NULL;
        END $$;
        CREATE TRIGGER outbox_notify AFTER INSERT ON "{schema}".outbox
            FOR EACH STATEMENT EXECUTE FUNCTION "{schema}".outbox_notify();
        CREATE TABLE "{schema}".inbox (
            consumer text NOT NULL,
            event_id uuid NOT NULL,
            routing_key text NOT NULL,
            received_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (consumer, event_id)
        );
        """


def create_outbox_and_inbox(schema: str) -> None:
    from alembic import op

    op.execute(outbox_inbox_ddl(schema))


def user_rls_ddl(
    schema: str, table: str, column: str = "user_id", *, system_read: bool = False
) -> str:
    """Row-level security, FORCEd, on a user-owned table: rows of ``app.user_id`` only.

    ``system_read`` adds a read-only policy for a transaction that declared itself the system
    principal (``app.principal = 'system'``, see :meth:`visiona.kit.db.Database.uow`): the
    sweepers and webhook handlers that must find rows before they know whose they are. Writes
    still need the owner's ``app.user_id``.
    """
    ddl = f"""
        ALTER TABLE "{schema}"."{table}" ENABLE ROW LEVEL SECURITY;
        ALTER TABLE "{schema}"."{table}" FORCE ROW LEVEL SECURITY;
        CREATE POLICY user_isolation ON "{schema}"."{table}"
            USING ({column} = current_setting('app.user_id', true))
            WITH CHECK ({column} = current_setting('app.user_id', true));
        """
    if system_read:
        ddl += f"""
        CREATE POLICY system_read ON "{schema}"."{table}" FOR SELECT
            USING (current_setting('app.principal', true) = 'system');
        """
    return ddl


def enable_user_rls(
    schema: str, table: str, column: str = "user_id", *, system_read: bool = False
) -> None:
    from alembic import op

    op.execute(user_rls_ddl(schema, table, column, system_read=system_read))
