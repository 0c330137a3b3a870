"""Sweeps that delete rows in batches, one transaction per batch, until none is left."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncConnection

from visiona.kit.db import Database


async def delete_in_batches(
    db: Database,
    delete_batch: Callable[[AsyncConnection], Awaitable[int]],
    *,
    system: bool = False,
) -> int:
    """Run ``delete_batch`` (a bounded DELETE returning how many rows it removed) in a
    transaction of its own until it removes none; the rows removed in all. Short transactions
    keep locks brief and let a sweep stop anywhere without losing what it did."""
    total = 0
    while True:
        async with db.uow(system=system) as uow:
            deleted = await delete_batch(uow.session)
            await uow.commit()
        total += deleted
        if deleted == 0:
            return total
