"""The base of a service's repositories: the statements of one aggregate on one transaction.

Bind a repository to a unit of work's connection (``uow.session``); it runs textual SQL with
named parameters there (ADR 0011), so it sees what the transaction sees (row-level security
as the transaction's user) and commits only with the unit of work.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

Statement = str | sa.TextClause
Params = Mapping[str, Any] | None


class Repository:
    """Statements on one transaction: bind to a unit of work's connection (``uow.session``)."""

    def __init__(self, session: AsyncConnection) -> None:
        self.session = session

    async def _execute(self, sql: Statement, params: Params = None) -> sa.CursorResult[Any]:
        statement = sa.text(sql) if isinstance(sql, str) else sql
        return await self.session.execute(statement, dict(params or {}))

    async def _first(self, sql: Statement, params: Params = None) -> sa.Row[Any] | None:
        """The first row, or None when there is none."""
        return (await self._execute(sql, params)).first()

    async def _one(self, sql: Statement, params: Params = None) -> sa.Row[Any]:
        """The one row the statement returns (an error when it returns none or more)."""
        return (await self._execute(sql, params)).one()

    async def _scalar(self, sql: Statement, params: Params = None) -> Any:
        """The first column of the first row, or None when there is none."""
        return (await self._execute(sql, params)).scalar()

    async def _scalar_one(self, sql: Statement, params: Params = None) -> Any:
        """The first column of the one row the statement returns."""
        return (await self._execute(sql, params)).scalar_one()

    async def _affected(self, sql: Statement, params: Params = None) -> int:
        """How many rows the statement (an UPDATE, DELETE or INSERT) changed."""
        return int((await self._execute(sql, params)).rowcount or 0)
