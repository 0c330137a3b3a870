"""``serve``: a service from start-up to a graceful stop (gRPC with health and reflection, the
broker link, the outbox relay, workers, health reporting, /metrics on the metrics port)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Sequence

from visiona.admin.v1 import admin_pb2_grpc
from visiona.kit.aio import sleep_or_stop
from visiona.kit.bus import EventBus
from visiona.kit.db import Database
from visiona.kit.grpcserver import NOT_SERVING, SERVING, create_server, enable_reflection
from visiona.kit.internal_token import Minter, Verifier
from visiona.kit.logging import configure_logging, get_logger
from visiona.kit.metrics.serving import serve_metrics
from visiona.kit.relay import OutboxRelay
from visiona.kit.runtime.broker import BrokerLink, retrying
from visiona.kit.runtime.ops import Operations, OpsServicer
from visiona.kit.runtime.spec import LIVENESS, Runtime, ServiceSpec
from visiona.kit.settings import ServiceSettings
from visiona.kit.storage import Storage
from visiona.kit.telemetry import configure_tracing

log = get_logger(__name__)


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
    bus = EventBus.from_settings(settings)
    storage = Storage.from_settings(settings) if settings.s3_endpoint else None
    if storage is not None:
        await retrying("s3", storage.ensure_bucket, 60)

    server, health = create_server(
        verifier=verifier,
        max_connection_age_s=settings.grpc_max_connection_age_s,
        max_connection_age_grace_s=settings.grpc_max_connection_age_grace_s,
    )
    runtime = Runtime(settings, db, bus, server, storage, minter)
    await spec.setup(runtime)
    runtime.add_metrics_sampler()
    # Every service's dead letters and outbox, for operators (system principal only).
    admin_pb2_grpc.add_OpsServiceServicer_to_server(OpsServicer(Operations(runtime)), server)
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
    stop_metrics = serve_metrics(settings.metrics_host, settings.metrics_port)
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
    if stop_metrics is not None:
        stop_metrics()
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
        await sleep_or_stop(stop, interval_s)
