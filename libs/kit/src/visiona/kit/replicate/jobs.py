"""A service's paid jobs at Replicate as row-jobs, and what runs beside them."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import httpx

from visiona.kit.credits import CreditsParticipant
from visiona.kit.db import Database
from visiona.kit.jobs import JobRow, RowJobs
from visiona.kit.owners import LegacyRows
from visiona.kit.replicate.adapter import ReplicateServiceSettings
from visiona.kit.replicate.errors import ProviderError
from visiona.kit.replicate.webhooks import forget_old_webhooks
from visiona.kit.runtime import Runtime
from visiona.kit.storage import Storage

R = TypeVar("R", bound=JobRow)
P = TypeVar("P")


class ReplicateJobs(RowJobs[R], Generic[R, P]):
    """A service's paid jobs at Replicate as row-jobs: the storage their files go to, the
    service's Replicate port (``provider``), its settings (their job timings) and an HTTP
    client for the provider's files. A provider error is permanent as it says."""

    settings: ReplicateServiceSettings

    def __init__(
        self,
        db: Database,
        storage: Storage,
        provider: P,
        settings: ReplicateServiceSettings,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(db, settings.job_settings())
        self.storage = storage
        self.provider = provider
        self.settings = settings
        self.http = http or httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=10.0))

    async def close(self) -> None:
        await self.http.aclose()

    def permanent(self, error: BaseException) -> bool:
        return isinstance(error, ProviderError) and error.permanent


def run_paid_jobs(
    runtime: Runtime,
    jobs: ReplicateJobs[Any, Any],
    *,
    worker: str,
    credits_consumer: str,
    credits: CreditsParticipant[Any],
    legacy: LegacyRows,
) -> None:
    """What a service whose paid jobs run at Replicate runs beside its own work: billing's
    answers about the jobs' credits, the jobs' worker, the expiry of webhook ids and the move
    of legacy object keys; the jobs' HTTP client is closed at stop."""
    settings = jobs.settings
    runtime.add_consumer(credits_consumer, credits.handlers())
    runtime.add_worker(worker, jobs.run)
    runtime.add_periodic("webhook-ids", 3600.0, lambda: forget_old_webhooks(runtime.db))
    moves = legacy.job(settings.legacy_keys_batch)
    runtime.add_periodic("legacy-keys", settings.legacy_keys_interval_s, moves.run_once)
    runtime.closers.append(jobs.close)
