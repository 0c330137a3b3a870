"""``visiona-ops verify``: what a restored (or any) deployment must hold, checked.

- every balance and every held amount equals the sum of its ledger's deltas;
- every model's weights (unless it is being purged) and every image (and its thumbnail) is
  an object in the bucket;
- no app role is a superuser, may bypass RLS, or owns anything (a table owner is exempt from
  RLS unless forced, and may change the table);
- row-level security is enabled and forced on every table that holds a user's rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
from minio.error import S3Error
from psycopg import sql

from visiona.kit.provision import SERVICES
from visiona.kit.storage import is_missing
from visiona.ops import db
from visiona.ops.settings import BackupSettings
from visiona.ops.store import client


@dataclass
class Report:
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        out = [f"{name}: {value}" for name, value in self.counts.items()]
        out += [f"MISMATCH {p}" for p in self.problems]
        out.append("verify: ok" if self.ok else f"verify: {len(self.problems)} mismatches")
        return out


LEDGER = """
SELECT coalesce(a.user_id, l.user_id), coalesce(a.balance, 0), coalesce(a.held, 0),
       coalesce(l.balance, 0), coalesce(l.held, 0)
FROM billing.accounts a
FULL JOIN (SELECT user_id, sum(delta_balance) AS balance, sum(delta_held) AS held
           FROM billing.ledger_entries GROUP BY user_id) l USING (user_id)
"""


def _ledgers(conn: psycopg.Connection[tuple[object, ...]], report: Report) -> None:
    rows = conn.execute(LEDGER).fetchall()
    report.counts["balances checked against their ledger"] = len(rows)
    for user, balance, held, ledger_balance, ledger_held in rows:
        if (balance, held) != (ledger_balance, ledger_held):
            report.problems.append(
                f"billing account {user}: balance {balance} held {held}, "
                f"ledger {ledger_balance} / {ledger_held}"
            )


def _objects(
    conn: psycopg.Connection[tuple[object, ...]],
    settings: BackupSettings,
    bucket: str,
    report: Report,
) -> None:
    wanted = [
        ("model weights", str(k))
        for (k,) in conn.execute(
            # A model being purged loses its objects before its row (training's purge step).
            "SELECT weights_key FROM training.models WHERE weights_key IS NOT NULL "
            "AND work IS DISTINCT FROM 'purge'"
        ).fetchall()
    ]
    for key, thumb in conn.execute("SELECT object_key, thumbnail_key FROM generation.images"):
        wanted += [("image", str(key)), ("thumbnail", str(thumb))]
    s3 = client(settings)
    for kind in ("model weights", "image", "thumbnail"):
        report.counts[f"{kind} objects"] = sum(1 for k, _ in wanted if k == kind)
    for kind, key in wanted:
        try:
            s3.stat_object(bucket, key)
        except S3Error as exc:
            if not is_missing(exc):
                raise
            report.problems.append(f"{kind} {key} is not in bucket {bucket}")


def _roles(conn: psycopg.Connection[tuple[object, ...]], suffix: str, report: Report) -> None:
    for service in SERVICES:
        app = f"{service}_app{suffix}"
        row = conn.execute(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = %s", (app,)
        ).fetchone()
        if row is None:
            report.problems.append(f"role {app} is missing")
            continue
        if row[0] or row[1]:
            report.problems.append(f"role {app} is a superuser or may bypass RLS")
        owned = conn.execute(
            "SELECT count(*) FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles "
            "WHERE rolname = %s)",
            (app,),
        ).fetchone()
        schemas = conn.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspowner = (SELECT oid FROM pg_roles "
            "WHERE rolname = %s)",
            (app,),
        ).fetchone()
        if (owned and owned[0]) or (schemas and schemas[0]):
            report.problems.append(f"role {app} owns tables or schemas")
    report.counts["app roles checked"] = len(SERVICES)


def _rls(conn: psycopg.Connection[tuple[object, ...]], report: Report) -> None:
    tables = db.user_tables(conn)
    report.counts["user-owned tables with RLS forced"] = 0
    for schema, table in tables:
        row = conn.execute(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = %s::regclass",
            (sql.Identifier(schema, table).as_string(conn),),
        ).fetchone()
        if row is None or not (row[0] and row[1]):
            report.problems.append(f"table {schema}.{table}: row-level security is not forced")
        else:
            report.counts["user-owned tables with RLS forced"] += 1


def run(settings: BackupSettings, database: str, bucket: str) -> Report:
    url = db.with_database(settings.database_url.get_secret_value(), database)
    report = Report()
    suffix = db.role_suffix(url)
    with psycopg.connect(url, autocommit=True) as conn:
        _ledgers(conn, report)
        _objects(conn, settings, bucket, report)
        _roles(conn, suffix, report)
        _rls(conn, report)
    return report
