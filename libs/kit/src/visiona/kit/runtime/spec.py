"""What a service's ``__main__`` describes (:class:`ServiceSpec`) and its setup wires into
(:class:`Runtime`): servicers, consumers, workers, periodic ticks."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc

from visiona.kit import deadletters, migrations
from visiona.kit.aio import sleep_or_stop
from visiona.kit.bus import EventBus
from visiona.kit.consumer import EventConsumer, EventHandler
from visiona.kit.db import Database
from visiona.kit.events import Event
from visiona.kit.internal_token import Minter
from visiona.kit.logging import get_logger
from visiona.kit.metrics.sampler import JobKind, sampler
from visiona.kit.settings import ServiceSettings
from visiona.kit.storage import Storage

log = get_logger(__name__)


LIVENESS = "liveness"
DEAD_LETTERS = "dead-letters"
METRICS_SAMPLER = "metrics-sampler"


Worker = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


@dataclass
class Wiring:
    """A process's side of the bus: its consumer groups and background workers (the back
    services' :class:`Runtime`, the gateway's backplane)."""

    settings: ServiceSettings
    db: Database
    bus: EventBus
    consumers: list[EventConsumer] = field(default_factory=list, kw_only=True)
    workers: dict[str, Worker] = field(default_factory=dict, kw_only=True)
    # The job tables this process owns, whose rows the metrics sampler counts.
    job_kinds: list[JobKind] = field(default_factory=list, kw_only=True)

    def add_consumer(self, name: str, handlers: Mapping[type[Event], EventHandler]) -> None:
        self.consumers.append(
            EventConsumer.from_settings(self.settings, name, self.db, self.bus, handlers)
        )
        if DEAD_LETTERS not in self.workers:
            self.add_periodic(
                DEAD_LETTERS,
                self.settings.dead_letter_check_interval_s,
                deadletters.dead_letter_check(self.bus, lambda: [c.name for c in self.consumers]),
            )

    def add_job_kind(self, kind: JobKind) -> None:
        """Count ``kind``'s rows by state in the metrics (visiona_jobs)."""
        self.job_kinds.append(kind)

    def add_metrics_sampler(self) -> None:
        """Sample the outbox and the job kinds added so far into their gauges, every
        ``metrics_sample_interval_s`` (the process calls it once its setup is done)."""
        kinds = list(self.job_kinds)
        interval = self.settings.metrics_sample_interval_s
        self.add_periodic(METRICS_SAMPLER, interval, sampler(self.db, kinds))

    def add_worker(self, name: str, run: Worker) -> None:
        """A background loop (sweeper, reconciler) started with the process; ``run(stop)``
        must return soon after ``stop`` is set. Work it does must be safe to run on several
        replicas at once.
        """
        self.workers[name] = run

    def add_periodic(
        self, name: str, interval_s: float, tick: Callable[[], Awaitable[object]]
    ) -> None:
        """Run ``tick`` every ``interval_s`` until stop; a failing tick is logged, not fatal."""
        self.add_worker(name, periodic(name, interval_s, tick))


@dataclass
class Runtime(Wiring):
    """What a service's setup function wires its servicers and consumers into."""

    server: grpc.aio.Server
    storage: Storage | None
    # Mints the internal token of calls this service makes to others (iss = its name).
    minter: Minter
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def needs_storage(self) -> Storage:
        """The S3 storage, for a service that cannot run without it."""
        if self.storage is None:
            prefix = self.settings.model_config.get("env_prefix", "")
            raise RuntimeError(
                f"the {self.settings.service_name} service needs S3 ({prefix}S3_ENDPOINT)"
            )
        return self.storage


def periodic(
    name: str, interval_s: float, tick: Callable[[], Awaitable[object]]
) -> Callable[[asyncio.Event], Coroutine[Any, Any, None]]:
    """A worker that runs ``tick`` every ``interval_s`` until stop; a failing tick is logged,
    not fatal."""

    async def run(stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await tick()
            except Exception:
                log.exception("worker.tick_failed", worker=name)
            await sleep_or_stop(stop, interval_s)

    return run


@dataclass(frozen=True)
class ServiceSpec:
    """A back service as its ``__main__`` describes it: its name, settings and setup, the
    generated module of its proto file (every gRPC service the file declares is served, with
    reflection and health) and the file of its package (its migrations are found beside it)."""

    name: str
    settings_factory: Callable[[], ServiceSettings]
    setup: Callable[[Runtime], Awaitable[None]]
    _: KW_ONLY
    proto: ModuleType | None
    package: str

    @property
    def grpc_services(self) -> list[str]:
        if self.proto is None:
            return []
        return [s.full_name for s in self.proto.DESCRIPTOR.services_by_name.values()]

    @property
    def migrations_dir(self) -> Path:
        return migrations.locate(self.package)
