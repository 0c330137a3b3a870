"""What is left of a user in the database: the rows that name them, wherever they are."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Sql = Callable[..., list[Any]]


def rows_naming(sql: Sql, schema: str, *needles: str) -> dict[str, int]:
    """Rows of every table of ``schema`` (the outbox, inbox and stored webhooks included)
    whose text holds one of ``needles``, counted by table; tables without any are left out.

    ``sql`` runs a query as a superuser (row-level security must not hide anything):
    ``RunningStack.admin_sql`` or ``SchemaDb.sql``."""
    tables = [
        str(t)
        for (t,) in sql(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = %s AND table_type = 'BASE TABLE' ORDER BY 1",
            schema,
        )
    ]
    assert tables, f"schema {schema} has no tables"
    found: dict[str, int] = {}
    for table in tables:
        ((count,),) = sql(
            f'SELECT count(*) FROM "{schema}"."{table}" t '
            "WHERE EXISTS (SELECT 1 FROM unnest(%s::text[]) n WHERE strpos(t::text, n) > 0)",
            list(needles),
        )
        if count:
            found[table] = int(count)
    return found
