"""The shared ``serve``/``migrate`` entry point of every back service.

A service's ``__main__`` describes itself with a :class:`ServiceSpec` (settings, migrations,
gRPC servicers and consumers); :func:`run_cli` does the rest: logging, tracing, database,
broker, gRPC with health and reflection, the outbox relay, consumers, health reporting and a
graceful stop on SIGTERM or SIGINT.

Start-up waits a while for PostgreSQL and S3 (a service cannot answer anything without its
database). It never waits for RabbitMQ: the gRPC server starts at once and a
:class:`BrokerLink` connects the bus and starts the consumers in the background, retrying
with growing backoff for as long as it takes, whatever the broker does meanwhile (refusing
connections, or accepting them and dropping them mid-declaration). Until it is done,
readiness (the health service's default name) is NOT_SERVING and the log says what is
missing; liveness is SERVING throughout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import grpc
from tenacity import AsyncRetrying, stop_after_delay, stop_when_event_set, wait_exponential

from visiona.kit import deadletters, migrations
from visiona.kit.bus import EventBus
from visiona.kit.consumer import EventConsumer, EventHandler
from visiona.kit.db import Database
from visiona.kit.events import Event
from visiona.kit.grpcserver import NOT_SERVING, SERVING, create_server, enable_reflection
from visiona.kit.internal_token import Minter, Verifier
from visiona.kit.logging import configure_logging, get_logger
from visiona.kit.relay import OutboxRelay
from visiona.kit.settings import ServiceSettings
from visiona.kit.storage import Storage
from visiona.kit.telemetry import configure_tracing

log = get_logger(__name__)

LIVENESS = "liveness"
DEAD_LETTERS = "dead-letters"
# Back-off between attempts to reach the broker: 0.2 s, doubling, at most this.
BROKER_RETRY_MAX_S = 5.0
# One attempt (a connect, or declaring and consuming one group) that takes longer is given up
# and tried again: a broker that accepts connections and never answers must not stall us.
BROKER_ATTEMPT_TIMEOUT_S = 15.0


@dataclass
class Runtime:
    """What a service's setup function wires its servicers and consumers into."""

    settings: ServiceSettings
    db: Database
    bus: EventBus
    server: grpc.aio.Server
    storage: Storage | None
    # Mints the internal token of calls this service makes to others (iss = its name).
    minter: Minter
    consumers: list[EventConsumer] = field(default_factory=list)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    workers: dict[str, Callable[[asyncio.Event], Coroutine[Any, Any, None]]] = field(
        default_factory=dict
    )

    def needs_storage(self) -> Storage:
        """The S3 storage, for a service that cannot run without it."""
        if self.storage is None:
            prefix = self.settings.model_config.get("env_prefix", "")
            raise RuntimeError(
                f"the {self.settings.service_name} service needs S3 ({prefix}S3_ENDPOINT)"
            )
        return self.storage

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

    def add_worker(
        self, name: str, run: Callable[[asyncio.Event], Coroutine[Any, Any, None]]
    ) -> None:
        """A background loop (sweeper, reconciler) started with the service; ``run(stop)``
        must return soon after ``stop`` is set. Work it does must be safe to run on several
        replicas at once.
        """
        self.workers[name] = run

    def add_periodic(
        self, name: str, interval_s: float, tick: Callable[[], Awaitable[object]]
    ) -> None:
        """Run ``tick`` every ``interval_s`` until stop; a failing tick is logged, not fatal."""
        self.add_worker(name, periodic(name, interval_s, tick))


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
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)

    return run


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    settings_factory: Callable[[], ServiceSettings]
    migrations_dir: Path
    grpc_services: Sequence[str]
    setup: Callable[[Runtime], Awaitable[None]]


async def retrying(what: str, attempt: Callable[[], Awaitable[None]], within_s: float) -> None:
    """Call ``attempt`` until it succeeds; after ``within_s`` its error is raised."""
    async for attempt_ctx in AsyncRetrying(
        stop=stop_after_delay(within_s),
        wait=wait_exponential(multiplier=0.2, max=3),
        reraise=True,
    ):
        with attempt_ctx:
            try:
                await attempt()
            except Exception as exc:
                log.warning("startup.waiting", dependency=what, error=repr(exc))
                raise


async def retrying_until_stopped(
    what: str,
    attempt: Callable[[], Awaitable[None]],
    stop: asyncio.Event,
    *,
    max_wait_s: float = BROKER_RETRY_MAX_S,
    attempt_timeout_s: float = BROKER_ATTEMPT_TIMEOUT_S,
) -> bool:
    """Call ``attempt`` until it succeeds (True) or ``stop`` is set (False), with exponential
    backoff between failures, capped at ``max_wait_s``: for as long as it takes."""
    try:
        async for attempt_ctx in AsyncRetrying(
            stop=stop_when_event_set(stop),  # type: ignore[arg-type]
            wait=wait_exponential(multiplier=0.2, max=max_wait_s),
            sleep=partial(_sleep_or_stop, stop),
            reraise=True,
        ):
            with attempt_ctx:
                try:
                    await asyncio.wait_for(attempt(), attempt_timeout_s)
                except Exception as exc:
                    log.warning("startup.waiting", dependency=what, error=repr(exc)[:300])
                    raise
    except Exception:
        return False  # stopped while still failing
    return True


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


class BrokerLink:
    """The bus and the consumers on it, attached in the background.

    :meth:`run` connects the bus, then starts each consumer (declares its queues, binds them,
    consumes), each step retried by :func:`retrying_until_stopped` until it succeeds. After
    that aio-pika's robust connection reconnects and declares everything again by itself.
    :meth:`missing` says what readiness still waits for.
    """

    def __init__(
        self,
        bus: EventBus,
        consumers: Sequence[EventConsumer],
        *,
        max_wait_s: float = BROKER_RETRY_MAX_S,
    ) -> None:
        self.bus = bus
        # Read when run() gets to them: consumers added before then are started too.
        self.consumers = consumers
        self.max_wait_s = max_wait_s
        self.attached = asyncio.Event()
        self._started = 0

    def missing(self) -> list[str]:
        """``rabbitmq`` while the bus is not connected, else each consumer not consuming."""
        if not self.bus.connected:
            return ["rabbitmq"]
        return [f"consumer {c.name}" for c in self.consumers[self._started :]]

    async def run(self, stop: asyncio.Event) -> bool:
        """Attach; True once the bus is connected and every consumer consumes, False when
        ``stop`` came first."""
        if not await retrying_until_stopped(
            "rabbitmq", self.bus.connect, stop, max_wait_s=self.max_wait_s
        ):
            return False
        while self._started < len(self.consumers):
            consumer = self.consumers[self._started]
            if not await retrying_until_stopped(
                f"rabbitmq (consumer {consumer.name})",
                consumer.start,
                stop,
                max_wait_s=self.max_wait_s,
            ):
                return False
            self._started += 1
        self.attached.set()
        log.info("broker.attached", consumers=self._started)
        return True


async def serve(spec: ServiceSpec, settings: ServiceSettings | None = None) -> None:
    settings = settings or spec.settings_factory()
    configure_logging(settings)
    configure_tracing(settings)
    try:
        verifier = Verifier.from_settings(settings)
        minter = Minter.from_settings(settings)
    except ValueError as exc:
        # Not retried: without the shared secret no call could be trusted or made.
        log.error("startup.invalid_config", error=str(exc))
        raise SystemExit(f"visiona-{spec.name}: {exc}") from None
    db = Database.from_settings(settings)
    await retrying("postgres", db.ping, 60)
    # Not retried: a role that could bypass row-level security is a configuration error.
    await db.assert_rls_cannot_be_bypassed()
    bus = EventBus(
        settings.amqp_url.get_secret_value(),
        settings.events_exchange,
        queue_prefix=settings.queue_prefix,
        prefetch=settings.consumer_prefetch,
        delivery_limit=settings.delivery_limit,
        connection_name=settings.service_name,
    )
    storage = Storage.from_settings(settings) if settings.s3_endpoint else None
    if storage is not None:
        await retrying("s3", storage.ensure_bucket, 60)

    server, health = create_server(verifier=verifier)
    runtime = Runtime(settings, db, bus, server, storage, minter)
    await spec.setup(runtime)
    enable_reflection(server, spec.grpc_services)
    bound = server.add_insecure_port(f"{settings.grpc_host}:{settings.grpc_port}")
    if bound == 0:
        raise RuntimeError(f"cannot listen on {settings.grpc_host}:{settings.grpc_port}")

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    # Readiness (the default name and each service's) follows the dependencies, see
    # _report_health: not ready until it says so. Liveness is only "the process answers".
    readiness = [*spec.grpc_services, ""]
    for name in readiness:
        await health.set(name, NOT_SERVING)
    await server.start()
    await health.set(LIVENESS, SERVING)
    broker = BrokerLink(bus, runtime.consumers)
    relay = OutboxRelay(
        db,
        bus,
        batch_size=settings.relay_batch_size,
        poll_interval_s=settings.relay_poll_interval_s,
    )
    broker_task = asyncio.create_task(_attach_then_relay(broker, relay, stop), name="broker")
    worker_tasks = [
        asyncio.create_task(run(stop), name=name) for name, run in runtime.workers.items()
    ]
    health_task = asyncio.create_task(
        _report_health(health, db, broker, readiness, settings.health_interval_s, stop),
        name="health",
    )
    log.info("service.started", grpc_port=settings.grpc_port, consumers=len(runtime.consumers))

    await stop.wait()
    log.info("service.stopping")
    await health.enter_graceful_shutdown()
    if not broker.attached.is_set():
        # Still attaching: an attempt in flight is abandoned, not waited for.
        broker_task.cancel()
    # No new deliveries; in-flight handlers finish; unacked prefetched messages return to the
    # queue when their channel closes.
    for consumer in runtime.consumers:
        await consumer.stop(settings.shutdown_timeout_s)
    await server.stop(settings.grpc_grace_s)
    for task in (broker_task, health_task, *worker_tasks):
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, settings.shutdown_timeout_s)
    for close in runtime.closers:
        await close()
    await bus.close()
    await db.dispose()
    log.info("service.stopped")


async def _attach_then_relay(broker: BrokerLink, relay: OutboxRelay, stop: asyncio.Event) -> None:
    """The relay publishes once the bus is connected and the consumers consume (as when the
    broker answered at once)."""
    if await broker.run(stop):
        await relay.run(stop)


async def _report_health(
    health: object,
    db: Database,
    broker: BrokerLink,
    names: Sequence[str],
    interval_s: float,
    stop: asyncio.Event,
) -> None:
    """SERVING only while the database answers, the bus is connected and every consumer
    consumes; each change is logged with what is missing."""
    last_status: int | None = None
    last_missing: list[str] = []
    # The broker usually answers at once: give it a moment, so a normal start does not first
    # report (and log) what is only a few milliseconds away.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(broker.attached.wait(), interval_s)
    while not stop.is_set():
        missing: list[str] = []
        try:
            await asyncio.wait_for(db.ping(), timeout=max(interval_s, 1.0))
        except Exception:
            missing.append("postgres")
        missing += broker.missing()
        status = NOT_SERVING if missing else SERVING
        if status != last_status:
            for name in names:
                await health.set(name, status)  # type: ignore[attr-defined]
        if missing and missing != last_missing:
            log.warning("health.changed", serving=False, missing=missing)
        elif not missing and last_missing:
            log.info("health.changed", serving=True)
        last_status, last_missing = status, missing
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)


def migrate(spec: ServiceSpec, settings: ServiceSettings | None = None) -> None:
    settings = settings or spec.settings_factory()
    configure_logging(settings)
    url = settings.migration_database_url or settings.database_url
    migrations.upgrade(spec.migrations_dir, url.get_secret_value(), settings.db_schema)
    log.info("migrations.applied", schema=settings.db_schema)


def run_cli(spec: ServiceSpec, argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=f"visiona-{spec.name}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run gRPC, consumers and the outbox relay until SIGTERM")
    sub.add_parser("migrate", help="apply database migrations (as the schema owner)")
    add_dead_letters_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "migrate":
        migrate(spec)
    elif args.command == "dead-letters":
        settings = spec.settings_factory()
        configure_logging(settings)
        asyncio.run(dead_letters(spec, args.action, args.consumer, args.limit, settings))
    else:
        asyncio.run(serve(spec))


def add_dead_letters_parser(sub: Any) -> None:
    cmd = sub.add_parser(
        "dead-letters",
        help="list the dead-lettered events of this service's consumers, or "
        "send them back to their queue once the cause is fixed",
    )
    cmd.add_argument("action", nargs="?", choices=("list", "redrive"), default="list")
    cmd.add_argument("--consumer", help="one consumer group (default: all of this service's)")
    cmd.add_argument("--limit", type=int, default=None, help="at most this many per group")


async def dead_letters(
    spec: ServiceSpec,
    action: str,
    consumer: str | None,
    limit: int | None,
    settings: ServiceSettings,
) -> dict[str, int]:
    """``dead-letters list|redrive``: prints each group's dead letters (event ids and routing
    keys, never payloads) or redrives them; answers the count listed or moved per group."""
    names = [consumer] if consumer else await registered_consumers(spec, settings)
    bus = EventBus(
        settings.amqp_url.get_secret_value(),
        settings.events_exchange,
        queue_prefix=settings.queue_prefix,
        delivery_limit=settings.delivery_limit,
        connection_name=f"{settings.service_name}-dead-letters",
    )
    await bus.connect()
    done: dict[str, int] = {}
    try:
        for name in names:
            if not await deadletters.declared(bus, name):
                print(f"{name}: no dead-letter queue (the group was never started)")
                continue
            if action == "redrive":
                done[name] = await deadletters.redrive(bus, name, limit)
                print(f"{name}: {done[name]} redriven")
                continue
            done[name] = await bus.dead_letter_count(name)
            print(f"{name}: {done[name]} dead-lettered")
            for letter in await deadletters.peek(bus, name, limit or 50):
                died = letter.died_at.isoformat() if letter.died_at else "-"
                print(
                    f"  {letter.event_id} {letter.routing_key} reason={letter.reason} "
                    f"deaths={letter.deaths} died_at={died}"
                )
    finally:
        await bus.close()
    return done


async def registered_consumers(spec: ServiceSpec, settings: ServiceSettings) -> list[str]:
    """The consumer groups ``spec.setup`` registers, from a runtime that never starts
    (nothing is served, consumed or connected)."""
    try:
        minter = Minter.from_settings(settings)
    except ValueError as exc:
        raise SystemExit(f"visiona-{spec.name}: {exc}") from None
    db = Database.from_settings(settings)
    bus = EventBus(settings.amqp_url.get_secret_value(), queue_prefix=settings.queue_prefix)
    storage = Storage.from_settings(settings) if settings.s3_endpoint else None
    runtime = Runtime(settings, db, bus, grpc.aio.server(), storage, minter)
    try:
        await spec.setup(runtime)
        return [c.name for c in runtime.consumers]
    finally:
        for close in runtime.closers:
            await close()
        await db.dispose()
