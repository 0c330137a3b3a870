"""What the erasure and the export workers share."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from visiona.kit.db import UnitOfWork
from visiona.kit.jobs import JobSettings
from visiona.training.config import TrainingSettings

SERVICE = "training"


def job_settings(settings: TrainingSettings) -> JobSettings:
    return JobSettings(
        poll_interval_s=settings.work_poll_interval_s,
        batch=settings.work_batch,
        lease_s=settings.work_lease_s,
        max_attempts=settings.work_max_attempts,
    )


def now() -> datetime:
    return datetime.now(UTC)


async def delete_rows(uow: UnitOfWork, statement: str, **params: Any) -> int:
    """Run a DELETE; how many rows it removed."""
    result = await uow.session.execute(sa.text(statement), params)
    return int(result.rowcount or 0)
