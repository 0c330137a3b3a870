"""PostgreSQL's side of a backup: pg_dump out, pg_restore in, and the SQL around them.

pg_dump and pg_restore are the machine's PostgreSQL client (the ``ops`` image pins it). The
password never goes on their command line (``ps`` shows it): it is passed as PGPASSWORD.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import IO

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from visiona.kit.provision import SERVICES

SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")
# A pg_restore list line that creates a schema: ``12; 2615 16390 SCHEMA - billing owner``.
_SCHEMA_ENTRY = re.compile(r"^\d+; \d+ \d+ SCHEMA - (\S+) ")


def libpq(url: str, **changes: str) -> tuple[str, dict[str, str]]:
    """A conninfo without the password, and the environment that carries it."""
    params = {k: str(v) for k, v in conninfo_to_dict(url).items()} | changes
    password = params.pop("password", None)
    env = os.environ | ({"PGPASSWORD": password} if password else {})
    return make_conninfo("", **params), env


def with_database(url: str, database: str) -> str:
    return make_conninfo(url, dbname=database)


def database_of(url: str) -> str:
    return str(conninfo_to_dict(url).get("dbname") or "postgres")


class HashingReader:
    """A pipe read by the uploader, counting and hashing what passes (the manifest's sha256)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def read(self, size: int = -1, /) -> bytes:
        data = self.stream.read(size)
        self.sha256.update(data)
        self.bytes += len(data)
        return data


def start_dump(url: str) -> subprocess.Popen[bytes]:
    """``pg_dump -Fc`` of the whole database, on the process's stdout."""
    conninfo, env = libpq(url)
    return subprocess.Popen(
        ["pg_dump", "--format=custom", "--no-password", f"--dbname={conninfo}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def schema_versions(url: str) -> dict[str, list[str]]:
    """Each service schema's Alembic heads (what its migrations say it is)."""
    versions: dict[str, list[str]] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for schema in SERVICES:
            exists = conn.execute(
                "SELECT 1 FROM pg_tables WHERE schemaname = %s AND tablename = 'alembic_version'",
                (schema,),
            ).fetchone()
            if exists:
                rows = conn.execute(
                    sql.SQL("SELECT version_num FROM {}.alembic_version ORDER BY 1").format(
                        sql.Identifier(schema)
                    )
                ).fetchall()
                versions[schema] = [str(r[0]) for r in rows]
    return versions


def role_suffix(url: str) -> str:
    """The suffix of the roles that own the service schemas (``gateway_migrator<suffix>``)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'gateway'"
        ).fetchone()
    if row is None or not str(row[0]).startswith("gateway_migrator"):
        raise RuntimeError("schema gateway is missing or not owned by a gateway_migrator role")
    return str(row[0]).removeprefix("gateway_migrator")


def is_empty(admin_url: str, database: str) -> bool:
    """True when ``database`` does not exist or has no table, view or sequence of its own."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
            return True
    with psycopg.connect(with_database(admin_url, database), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname <> ALL(%s) AND c.relkind IN ('r', 'p', 'v', 'm', 'S')",
            (list(SYSTEM_SCHEMAS),),
        ).fetchone()
    return row is not None and int(row[0]) == 0


def restore_list(dump: Path, existing_schemas: Iterable[str]) -> str:
    """The dump's table of contents without the schemas provisioning made already (their
    grants and everything in them stay)."""
    listing = subprocess.run(
        ["pg_restore", "--list", str(dump)], check=True, capture_output=True, text=True
    ).stdout
    skip = set(existing_schemas)
    kept = []
    for line in listing.splitlines():
        match = _SCHEMA_ENTRY.match(line)
        if match and match.group(1) in skip:
            continue
        kept.append(line)
    return "\n".join(kept) + "\n"


def pg_restore(url: str, dump: Path, listing: Path) -> None:
    """Everything of the dump in one transaction: a failure leaves nothing half-restored."""
    conninfo, env = libpq(url)
    done = subprocess.run(
        [
            "pg_restore",
            "--no-password",
            "--exit-on-error",
            "--single-transaction",
            f"--use-list={listing}",
            f"--dbname={conninfo}",
            str(dump),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    if done.returncode != 0:
        raise RuntimeError(f"pg_restore failed: {done.stderr.strip()[-2000:]}")


def reassert_ownership(url: str, suffix: str) -> list[str]:
    """Give every object of a service schema back to that schema's migrator (a restore as
    another role would own them) and FORCE row-level security wherever it is enabled; the
    statements it had to run."""
    ran: list[str] = []
    with psycopg.connect(url, autocommit=True) as conn:
        for schema in SERVICES:
            owner = f"{schema}_migrator{suffix}"
            rows = conn.execute(
                "SELECT c.relname, c.relkind, pg_get_userbyid(c.relowner), "
                "c.relrowsecurity, c.relforcerowsecurity FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'S')",
                (schema,),
            ).fetchall()
            for name, kind, current, rls, forced in rows:
                target = sql.Identifier(schema, str(name))
                if current != owner:
                    what = {"S": "SEQUENCE", "v": "VIEW", "m": "MATERIALIZED VIEW"}.get(
                        str(kind), "TABLE"
                    )
                    stmt = sql.SQL("ALTER {} {} OWNER TO {}").format(
                        sql.SQL(what), target, sql.Identifier(owner)
                    )
                    conn.execute(stmt)
                    ran.append(stmt.as_string(conn))
                if rls and not forced:
                    stmt = sql.SQL("ALTER TABLE {} FORCE ROW LEVEL SECURITY").format(target)
                    conn.execute(stmt)
                    ran.append(stmt.as_string(conn))
            for (signature,) in conn.execute(
                "SELECT p.oid::regprocedure::text FROM pg_proc p "
                "JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE n.nspname = %s AND pg_get_userbyid(p.proowner) <> %s",
                (schema, owner),
            ).fetchall():
                stmt = sql.SQL("ALTER FUNCTION {} OWNER TO {}").format(
                    sql.SQL(str(signature)), sql.Identifier(owner)
                )
                conn.execute(stmt)
                ran.append(stmt.as_string(conn))
    return ran


def user_tables(conn: psycopg.Connection[tuple[object, ...]]) -> list[tuple[str, str]]:
    """Every table of a service schema with a ``user_id`` column: the user-owned tables."""
    rows = conn.execute(
        "SELECT c.table_schema, c.table_name FROM information_schema.columns c "
        "JOIN information_schema.tables t USING (table_schema, table_name) "
        "WHERE c.column_name = 'user_id' AND t.table_type = 'BASE TABLE' "
        "AND c.table_schema = ANY(%s) ORDER BY 1, 2",
        (list(SERVICES),),
    ).fetchall()
    return [(str(s), str(t)) for s, t in rows]


def user_ids(url: str) -> set[str]:
    """Every user id any service schema holds a row of."""
    found: set[str] = set()
    with psycopg.connect(url, autocommit=True) as conn:
        for schema, table in user_tables(conn):
            for (user,) in conn.execute(
                sql.SQL("SELECT DISTINCT user_id::text FROM {}").format(
                    sql.Identifier(schema, table)
                )
            ).fetchall():
                if user is not None:
                    found.add(str(user))
    return found
