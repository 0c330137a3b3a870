"""Create a database, and per service a schema, an owner role and an app role.

Run once per environment by an administrator (``visiona-dev provision`` locally, the compose
``provision`` one-shot, a DBA or operator in production). Idempotent.

- ``<svc>_migrator`` owns schema ``<svc>`` and runs its migrations.
- ``<svc>_app`` is what the service runs as: USAGE on its own schema only, DML on its tables
  through default privileges, never owner, superuser or BYPASSRLS. It has no privilege on any
  other schema, so it cannot read another service's data.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import psycopg
from psycopg import sql

# The gRPC services, and every service with a schema (the gateway keeps deletion and export
# requests, idempotency keys, rate-limit buckets, accounts and the audit log).
BACK_SERVICES = ("training", "generation", "billing", "prompts")
SERVICES = ("gateway", *BACK_SERVICES)


@dataclass(frozen=True)
class ServiceRoles:
    service: str
    suffix: str = ""

    @property
    def schema(self) -> str:
        return self.service

    @property
    def migrator(self) -> str:
        return f"{self.service}_migrator{self.suffix}"

    @property
    def app(self) -> str:
        return f"{self.service}_app{self.suffix}"


def _ensure_role(cur: psycopg.Cursor[tuple[object, ...]], role: str, password: str | None) -> None:
    cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
    verb = "ALTER" if cur.fetchone() else "CREATE"
    stmt = sql.SQL("{} ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE").format(
        sql.SQL(verb), sql.Identifier(role)
    )
    if password:
        stmt = stmt + sql.SQL(" PASSWORD {}").format(sql.Literal(password))
    cur.execute(stmt)


def provision(
    admin_url: str,
    database: str,
    *,
    services: Iterable[str] = SERVICES,
    suffix: str = "",
    passwords: Mapping[str, str] | None = None,
) -> list[ServiceRoles]:
    """Create ``database`` if missing, then each service's schema and roles inside it."""
    passwords = passwords or {}
    with psycopg.connect(admin_url, autocommit=True) as admin:
        exists = admin.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if not exists:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    target = psycopg.conninfo.make_conninfo(admin_url, dbname=database)
    result = [ServiceRoles(s, suffix) for s in services]
    with psycopg.connect(target, autocommit=True) as conn, conn.cursor() as cur:
        # Nobody but the owners creates anything in public.
        cur.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
        for roles in result:
            _ensure_role(cur, roles.migrator, passwords.get(roles.migrator))
            _ensure_role(cur, roles.app, passwords.get(roles.app))
            ident = sql.Identifier
            for role in (roles.migrator, roles.app):
                cur.execute(
                    sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                        ident(database), ident(role)
                    )
                )
            cur.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}").format(
                    ident(roles.schema), ident(roles.migrator)
                )
            )
            cur.execute(
                sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(
                    ident(roles.schema), ident(roles.migrator)
                )
            )
            cur.execute(
                sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(
                    ident(roles.schema), ident(roles.app)
                )
            )
            for grant in (
                "SELECT, INSERT, UPDATE, DELETE ON TABLES",
                "USAGE, SELECT ON SEQUENCES",
                "EXECUTE ON FUNCTIONS",
            ):
                cur.execute(
                    sql.SQL(
                        "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT {} TO {}"
                    ).format(
                        ident(roles.migrator), ident(roles.schema), sql.SQL(grant), ident(roles.app)
                    )
                )
            # Tables created before the default privileges existed (re-provisioning).
            cur.execute(
                sql.SQL(
                    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {} TO {}"
                ).format(ident(roles.schema), ident(roles.app))
            )
    return result


def drop(admin_url: str, database: str, roles: Iterable[ServiceRoles]) -> None:
    """Drop a database and the roles provisioned for it (tests clean up with this)."""
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
        )
        for r in roles:
            for role in (r.app, r.migrator):
                admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--admin-url", default=os.environ.get("VISIONA_ADMIN_DATABASE_URL"))
    parser.add_argument("--database", default=os.environ.get("VISIONA_DATABASE", "visiona"))
    args = parser.parse_args(argv)
    if not args.admin_url:
        parser.error("--admin-url or VISIONA_ADMIN_DATABASE_URL is required")
    passwords = {}
    for service in SERVICES:
        roles = ServiceRoles(service)
        for kind, role in (("APP", roles.app), ("MIGRATOR", roles.migrator)):
            value = os.environ.get(f"VISIONA_{service.upper()}_{kind}_PASSWORD")
            if value:
                passwords[role] = value
    for roles in provision(args.admin_url, args.database, passwords=passwords):
        print(f"provisioned schema {roles.schema}: owner {roles.migrator}, app {roles.app}")


if __name__ == "__main__":
    main()
