"""A batched sweep runs its DELETE one transaction at a time until a batch removes nothing."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from visiona.kit.sweeps import delete_in_batches


class Uow:
    def __init__(self, log: list[str], system: bool) -> None:
        self.log = log
        self.session = object()
        self.system = system

    async def __aenter__(self) -> Uow:
        self.log.append(f"begin system={self.system}")
        return self

    async def commit(self) -> None:
        self.log.append("commit")

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.log.append("end")


class Db:
    def __init__(self) -> None:
        self.log: list[str] = []

    def uow(self, user_id: str | None = None, *, system: bool = False) -> Uow:
        return Uow(self.log, system)


async def test_each_batch_commits_on_its_own_until_one_removes_nothing() -> None:
    db, batches = Db(), iter([1000, 1000, 7, 0])
    sessions: list[Any] = []

    async def delete_batch(session: Any) -> int:
        sessions.append(session)
        db.log.append("delete")
        return next(batches)

    assert await delete_in_batches(db, delete_batch, system=True) == 2007  # type: ignore[arg-type]
    assert db.log == ["begin system=True", "delete", "commit", "end"] * 4
    assert len(set(map(id, sessions))) == 4
