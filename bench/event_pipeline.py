"""event_pipeline: the kit's outbox → relay → RabbitMQ → inbox against raw confirmed AMQP.

Candidate: ``WRITERS`` concurrent writers each commit one event per unit of work to the outbox
(the only way a service publishes); the kit's :class:`OutboxRelay` publishes them (persistent,
mandatory, confirmed) and marks them; the kit's :class:`EventConsumer` claims the inbox row and
runs a handler that inserts into ``effects`` in the same transaction, commits, then acks.
Writers and relay use one engine (the producing service), the consumer another (the consuming
service), each with its own broker connection, like two services would.

Baseline: raw aio-pika with the same concurrency and message bytes: ``WRITERS`` publishers
each publish persistently and mandatorily and wait for the confirm before the next message,
to a quorum queue consumed with manual ack at the kit consumer's prefetch.

Both pipelines are timed the same way, on one monotonic clock (``perf_counter``):

- lag of an event = consumer ack - producer start. The producer starts when a writer opens the
  unit of work (candidate) or calls ``publish`` (baseline); the ack is sent after the inbox
  transaction commits (candidate) or on delivery (baseline). So the lag holds the producer's own
  commit or confirm wait, the relay's pickup, the broker and the consumer's work.
- throughput = N ÷ (last ack - first start) over the N events of a round.

ratio = candidate throughput ÷ baseline throughput (medians over rounds). Each round also
sends ``PACED_EVENTS`` at a steady ``PACED_RATE`` through both, for the lag without a backlog.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import ClassVar

import aio_pika
import sqlalchemy as sa
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage, AbstractRobustConnection

from bench.common import (
    AMQP_URL,
    RUN,
    BenchError,
    BrokerWatch,
    Measurement,
    Result,
    Schema,
    T,
    closed_loop,
    interleaved,
    load_average,
    provisioned_schema,
    purge_broker,
    undisturbed,
)
from visiona.kit.bus import EventBus, wait_until
from visiona.kit.consumer import EventConsumer
from visiona.kit.db import Database, UnitOfWork
from visiona.kit.events import Event
from visiona.kit.migrations import outbox_inbox_ddl, user_rls_ddl
from visiona.kit.relay import OutboxRelay

NAME = "event_pipeline"
GOAL = ">= 0.5"
LAG_ALLOWANCE_MS = 50.0
EVENTS_PER_ROUND = 2000
WARMUP_EVENTS = 300
PACED_EVENTS = 200
PACED_RATE = 100.0  # events/s, well under either pipeline's capacity here
WRITERS = 4
# The kit's defaults for a service (ServiceSettings): consumer prefetch, delivery limit,
# relay batch size and poll interval, database pool size.
PREFETCH = 32
DELIVERY_LIMIT = 5
RELAY_BATCH = 100
RELAY_POLL_S = 1.0
POOL_SIZE = 10
ROUND_TIMEOUT_S = 120.0

SCHEMA = "benchpipe"
CONSUMER = "benchpipe.probe"
EXCHANGE = f"visiona.events.b{RUN}"
QUEUE_PREFIX = f"b{RUN}."
RAW_EXCHANGE = f"b{RUN}.raw"
RAW_QUEUE = f"b{RUN}.raw.probe"
USERS = [f"user_bench{i}" for i in range(WRITERS)]
# Roughly the size of a real event's ids and counters; both pipelines carry the same bytes.
NOTE = "x" * 160


class BenchProbeEmittedV1(Event):
    """A benchmark's probe event. Defined here, not in the kit's catalogue: only the benchmark
    process publishes or decodes it, and only on its own exchange."""

    routing_key: ClassVar[str] = "bench.probe.emitted.v1"

    user_id: str
    seq: int
    note: str


def _body(event: Event) -> bytes:
    # Exactly what the relay puts on the wire for an outbox row.
    return json.dumps(event.model_dump(mode="json"), separators=(",", ":")).encode()


class Stopwatch:
    """Start and ack times of one round's events, keyed by event id."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.started: dict[str, float] = {}
        self.acked: dict[str, float] = {}
        self.done = asyncio.Event()

    def start(self, key: str) -> None:
        self.started[key] = time.perf_counter()

    def ack(self, key: str) -> None:
        if key in self.started and key not in self.acked:
            self.acked[key] = time.perf_counter()
            if len(self.acked) == self.expected:
                self.done.set()

    async def quiet(self, idle_s: float = 2.0, limit_s: float = 30.0) -> None:
        """Wait until acks stop arriving (a cut-off round's stragglers drain)."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            seen = len(self.acked)
            await asyncio.sleep(idle_s)
            if len(self.acked) == seen:
                return

    async def wait(self, what: str) -> Measurement:
        try:
            await asyncio.wait_for(self.done.wait(), ROUND_TIMEOUT_S)
        except TimeoutError:
            raise BenchError(
                f"{what}: {len(self.acked)} of {self.expected} events arrived "
                f"within {ROUND_TIMEOUT_S:.0f} s"
            ) from None
        lags = [self.acked[k] - self.started[k] for k in self.acked]
        return Measurement.of(lags, max(self.acked.values()) - min(self.started.values()))


class TimedConsumer(EventConsumer):
    """The kit's consumer, noting when each delivery was acked.

    ``on_message`` returns right after the kit acks (which it does only after the inbox
    transaction commits), so the time taken there is the consumer-ack end of the lag, the same
    end the raw baseline measures. Wrapping the public entry point keeps the kit's handling
    untouched; only deliveries whose handler ran count, so a duplicate is never timed twice.
    """

    def __init__(self, db: Database, bus: EventBus, on_acked: Callable[[str], None]) -> None:
        super().__init__(CONSUMER, db, bus, {BenchProbeEmittedV1: self.record_effect})
        self.on_acked = on_acked
        self.handled: set[str] = set()

    async def record_effect(self, event: BenchProbeEmittedV1, uow: UnitOfWork) -> None:
        await uow.session.execute(
            sa.text("INSERT INTO effects (event_id, user_id, n) VALUES (:e, :u, :n)"),
            {"e": event.event_id, "u": event.user_id, "n": event.seq},
        )
        self.handled.add(str(event.event_id))

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        await super().on_message(message)
        if message.message_id in self.handled:
            self.on_acked(message.message_id)


class Pipeline(ABC):
    label: str

    def __init__(self) -> None:
        self.stopwatch = Stopwatch(0)

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def send(self, n: int) -> None:
        """Produce event ``n``, starting its clock first."""

    @abstractmethod
    def connected(self) -> bool: ...

    async def settle(self) -> None:
        """After the broker dropped our connections: wait for the reconnect, then for the
        interrupted round's stragglers."""

        async def connected() -> bool:
            return self.connected()

        await wait_until(connected, timeout=60, step=0.2)
        await self.stopwatch.quiet()

    @abstractmethod
    async def close(self) -> None: ...

    def _probe(self, n: int) -> BenchProbeEmittedV1:
        event = BenchProbeEmittedV1(user_id=USERS[n % WRITERS], seq=n, note=NOTE)
        self.stopwatch.start(str(event.event_id))
        return event


class KitPipeline(Pipeline):
    label = "outbox -> inbox"

    def __init__(self, schema: Schema) -> None:
        super().__init__()
        self.producer_db = Database(schema.app_url, SCHEMA, pool_size=POOL_SIZE)
        self.consumer_db = Database(schema.app_url, SCHEMA, pool_size=POOL_SIZE)
        self.relay_bus = self._bus(f"bench-{RUN}-relay")
        self.consumer_bus = self._bus(f"bench-{RUN}-consumer")
        self.consumer = TimedConsumer(
            self.consumer_db, self.consumer_bus, lambda key: self.stopwatch.ack(key)
        )
        self.relay = OutboxRelay(
            self.producer_db, self.relay_bus, batch_size=RELAY_BATCH, poll_interval_s=RELAY_POLL_S
        )
        self._stop = asyncio.Event()
        self._relay_task: asyncio.Task[None] | None = None

    @staticmethod
    def _bus(connection_name: str) -> EventBus:
        return EventBus(
            AMQP_URL,
            EXCHANGE,
            queue_prefix=QUEUE_PREFIX,
            prefetch=PREFETCH,
            delivery_limit=DELIVERY_LIMIT,
            connection_name=connection_name,
        )

    async def start(self) -> None:
        await self.relay_bus.connect()
        await self.consumer_bus.connect()
        await self.consumer.start()  # queue and binding exist before anything is published
        self._relay_task = asyncio.create_task(self.relay.run(self._stop), name="bench-relay")

    def connected(self) -> bool:
        return self.relay_bus.connected and self.consumer_bus.connected

    async def send(self, n: int) -> None:
        event = self._probe(n)
        async with self.producer_db.uow() as uow:
            uow.emit(event)
            await uow.commit()

    async def close(self) -> None:
        self._stop.set()
        if self._relay_task is not None:
            await self._relay_task
        await self.consumer.stop()
        for bus in (self.consumer_bus, self.relay_bus):
            await bus.close()
        for db in (self.producer_db, self.consumer_db):
            await db.dispose()


class RawPipeline(Pipeline):
    label = "raw aio-pika"

    def __init__(self) -> None:
        super().__init__()
        self._connections: list[AbstractRobustConnection] = []
        self._exchange: AbstractExchange | None = None

    async def start(self) -> None:
        publisher, consumer = [
            await aio_pika.connect_robust(
                AMQP_URL, client_properties={"connection_name": f"bench-{RUN}-raw-{role}"}
            )
            for role in ("publisher", "consumer")
        ]
        self._connections = [publisher, consumer]
        channel = await publisher.channel(publisher_confirms=True, on_return_raises=True)
        self._exchange = await channel.declare_exchange(
            RAW_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        consume_channel = await consumer.channel()
        await consume_channel.set_qos(prefetch_count=PREFETCH)
        queue = await consume_channel.declare_queue(
            RAW_QUEUE, durable=True, arguments={"x-queue-type": "quorum"}
        )
        await queue.bind(RAW_EXCHANGE, routing_key=BenchProbeEmittedV1.routing_key)
        await queue.consume(self._on_message)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        await message.ack()
        if message.message_id is not None:
            self.stopwatch.ack(message.message_id)

    def connected(self) -> bool:
        return all(not c.is_closed and c.connected.is_set() for c in self._connections)

    async def send(self, n: int) -> None:
        assert self._exchange is not None
        event = self._probe(n)
        message = aio_pika.Message(
            _body(event),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=str(event.event_id),
            type=event.routing_key,
            headers={},
        )
        await self._exchange.publish(message, event.routing_key, mandatory=True, timeout=10)

    async def close(self) -> None:
        for connection in self._connections:
            await connection.close()


async def saturated(pipeline: Pipeline, events: int) -> tuple[Measurement, float]:
    """``WRITERS`` producers back to back; returns lags, throughput and CPU ms per event."""
    pipeline.stopwatch = Stopwatch(events)
    numbers = iter(range(events))
    cpu = time.process_time()
    await closed_loop(lambda: pipeline.send(next(numbers)), events, WRITERS)
    measured = await pipeline.stopwatch.wait(pipeline.label)
    return measured, (time.process_time() - cpu) * 1000 / events


async def paced(pipeline: Pipeline, events: int, rate: float) -> Measurement:
    """Events produced at a steady ``rate`` (open loop), well below either side's capacity, so
    the lag is the pipeline's own latency rather than a backlog's."""
    pipeline.stopwatch = Stopwatch(events)
    began = time.perf_counter()
    sends = []
    for n in range(events):
        delay = began + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sends.append(asyncio.create_task(pipeline.send(n)))
    await asyncio.gather(*sends)
    return await pipeline.stopwatch.wait(pipeline.label)


def _create_tables(schema: Schema) -> None:
    schema.owner_sql(outbox_inbox_ddl(SCHEMA))
    schema.owner_sql(
        f"CREATE TABLE {SCHEMA}.effects (event_id uuid PRIMARY KEY, user_id text NOT NULL,"
        " n integer NOT NULL)"
    )
    schema.owner_sql(user_rls_ddl(SCHEMA, "effects"))


async def _measure(schema: Schema, rounds: int) -> Result:
    kit, raw = KitPipeline(schema), RawPipeline()
    sides: dict[str, Pipeline] = {"candidate": kit, "baseline": raw}
    loaded: dict[str, list[Measurement]] = {"candidate": [], "baseline": []}
    steady: dict[str, list[Measurement]] = {"candidate": [], "baseline": []}
    cpu: dict[str, list[float]] = {"candidate": [], "baseline": []}
    load_at_start = load_average()
    watch = BrokerWatch()
    repeated = 0

    async def measure(pipeline: Pipeline, run: Callable[[], Awaitable[T]]) -> T:
        nonlocal repeated
        result, thrown_away = await undisturbed(watch, run, pipeline.settle)
        repeated += thrown_away
        return result

    try:
        await watch.open()
        await kit.start()
        await raw.start()
        for pipeline in (kit, raw):  # connections, pools, plan caches, queue leaders
            await measure(pipeline, lambda p=pipeline: saturated(p, WARMUP_EVENTS))
        for _, candidate_first in interleaved(rounds):
            order = ["candidate", "baseline"] if candidate_first else ["baseline", "candidate"]
            for side in order:
                pipeline = sides[side]
                measured, cpu_ms = await measure(
                    pipeline, lambda p=pipeline: saturated(p, EVENTS_PER_ROUND)
                )
                loaded[side].append(measured)
                cpu[side].append(cpu_ms)
            for side in order:
                pipeline = sides[side]
                steady[side].append(
                    await measure(pipeline, lambda p=pipeline: paced(p, PACED_EVENTS, PACED_RATE))
                )
    finally:
        await kit.close()
        await raw.close()
        await watch.close()

    candidate = Measurement.median(loaded["candidate"])
    baseline = Measurement.median(loaded["baseline"])
    lag_goal = f"candidate p99 lag <= baseline p99 + {LAG_ALLOWANCE_MS:.0f} ms"
    lag_met = candidate.p99_ms <= baseline.p99_ms + LAG_ALLOWANCE_MS
    paced_lag = {side: Measurement.median(steady[side]) for side in sides}
    by_round = [c.rps / b.rps for c, b in zip(loaded["candidate"], loaded["baseline"], strict=True)]
    sample = BenchProbeEmittedV1(user_id=USERS[0], seq=EVENTS_PER_ROUND, note=NOTE)
    return Result(
        name=NAME,
        ratio=candidate.rps / baseline.rps,
        goal=GOAL,
        candidate=candidate,
        baseline=baseline,
        rounds=rounds,
        extra={
            "candidate_p99_lag_ms": round(candidate.p99_ms, 2),
            "baseline_p99_lag_ms": round(baseline.p99_ms, 2),
            "goal_p99_lag": lag_goal,
            "p99_lag_goal_met": lag_met,
            "candidate_eps": round(candidate.rps, 1),
            "baseline_eps": round(baseline.rps, 1),
            "candidate_cpu_ms_per_event": round(statistics.median(cpu["candidate"]), 3),
            "baseline_cpu_ms_per_event": round(statistics.median(cpu["baseline"]), 3),
            "paced_rate_eps": PACED_RATE,
            "paced_candidate_p50_lag_ms": round(paced_lag["candidate"].p50_ms, 2),
            "paced_candidate_p99_lag_ms": round(paced_lag["candidate"].p99_ms, 2),
            "paced_baseline_p50_lag_ms": round(paced_lag["baseline"].p50_ms, 2),
            "paced_baseline_p99_lag_ms": round(paced_lag["baseline"].p99_ms, 2),
            "events_per_round": EVENTS_PER_ROUND,
            "paced_events_per_round": PACED_EVENTS,
            "writers": WRITERS,
            "prefetch": PREFETCH,
            "relay_batch_size": RELAY_BATCH,
            "message_bytes": len(_body(sample)),
            "ratio_by_round": [round(r, 3) for r in by_round],
            "ratio_spread": round(statistics.pstdev(by_round), 3),
            "repeated_after_broker_disconnect": repeated,
            "load_avg_1m_at_start": load_at_start,
            "lag": "consumer ack - producer start (uow opened / publish called), per event",
            "throughput": "events / (last ack - first start) per round at WRITERS back to back",
            "notes": (
                "p50/p99 and the lag goal come from the saturated rounds, where a pipeline whose "
                "consumer is slower than its producers builds a backlog; paced_* is the same lag "
                "at a steady rate both sides sustain. Everything runs in this one process and "
                "asyncio loop (writers, relay, consumer; then publishers and consumer) on 2 "
                "cores shared with Postgres and RabbitMQ; cpu_ms_per_event is this process's "
                "CPU time per event. Each candidate event is its own transaction (a service "
                "would add the outbox row to a transaction it has anyway). The baseline queue "
                "is a plain quorum queue; the kit's also has a delivery limit and at-least-once "
                "dead-lettering."
            ),
        },
        headline=(
            "candidate_p99_lag_ms",
            "baseline_p99_lag_ms",
            "paced_candidate_p99_lag_ms",
            "paced_baseline_p99_lag_ms",
            "candidate_eps",
            "baseline_eps",
        ),
        other_goals={lag_goal: lag_met},
    )


def run(rounds: int) -> Result:
    try:
        with provisioned_schema("pipe", SCHEMA) as schema:
            _create_tables(schema)
            return asyncio.run(_measure(schema, rounds))
    finally:
        asyncio.run(
            purge_broker(
                (QUEUE_PREFIX, EXCHANGE),
                names=[
                    f"{QUEUE_PREFIX}{CONSUMER}",
                    f"{QUEUE_PREFIX}{CONSUMER}.dlq",
                    RAW_QUEUE,
                    f"x:{EXCHANGE}",
                    f"x:{EXCHANGE}.dlx",
                    f"x:{RAW_EXCHANGE}",
                ],
            )
        )
