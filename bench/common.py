"""What every benchmark shares: isolation on the real services, load loops, statistics, results.

A run is isolated the way the test suite isolates itself: its own databases, roles (suffix
``_b<run>``), exchange and queue prefix, processes on free ports in a temporary folder; all of
it is removed afterwards, also when the benchmark fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import operator
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import aio_pika
import psycopg

from visiona.emulators.clerk import DevIssuer, load_or_create_key
from visiona.emulators.stack import (
    WEED_PORTS,
    LocalStack,
    S3Config,
    StackConfig,
    check_postgres,
    check_rabbitmq,
    free_port,
    role_url,
)
from visiona.kit.provision import SERVICES, ServiceRoles, drop, provision

ADMIN_URL = os.environ.get(
    "VISIONA_ADMIN_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
AMQP_URL = os.environ.get("VISIONA_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
RUN = uuid.uuid4().hex[:8]
RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_ROUNDS = 5

T = TypeVar("T")


class BenchError(RuntimeError):
    """The benchmark could not measure (a dependency is down, a request failed, a timeout)."""


def check_dependencies() -> None:
    problems = [p for p in (check_postgres(ADMIN_URL), check_rabbitmq(AMQP_URL)) if p]
    if problems:
        raise BenchError("\n".join(problems))


# --- statistics -----------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0 to 100), linearly interpolated between closest ranks."""
    if not values:
        raise ValueError("no samples")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Measurement:
    p50_ms: float
    p99_ms: float
    rps: float

    @classmethod
    def of(cls, latencies_s: Sequence[float], elapsed_s: float) -> Measurement:
        return cls(
            p50_ms=percentile(latencies_s, 50) * 1000,
            p99_ms=percentile(latencies_s, 99) * 1000,
            rps=len(latencies_s) / elapsed_s,
        )

    @classmethod
    def median(cls, rounds: Sequence[Measurement]) -> Measurement:
        return cls(
            p50_ms=statistics.median(m.p50_ms for m in rounds),
            p99_ms=statistics.median(m.p99_ms for m in rounds),
            rps=statistics.median(m.rps for m in rounds),
        )

    def as_json(self) -> dict[str, float]:
        return {
            "p50_ms": round(self.p50_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "rps": round(self.rps, 1),
        }


_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}


def goal_met(value: float, goal: str) -> bool:
    """``goal`` is ``"<op> <number>"``, e.g. ``">= 0.5"``."""
    op, _, number = goal.partition(" ")
    return _OPS[op](value, float(number))


@dataclass
class Result:
    """One benchmark's outcome, in the JSON shape DESIGN.md fixes."""

    name: str
    ratio: float
    goal: str
    candidate: Measurement
    baseline: Measurement
    rounds: int
    extra: dict[str, Any] = field(default_factory=dict)
    # Extra keys worth a place on the printed line, in order.
    headline: tuple[str, ...] = ()
    # Secondary goals beside the ratio's, e.g. {"added_p50_ms <= 1": True}.
    other_goals: dict[str, bool] = field(default_factory=dict)
    when: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def met(self) -> bool:
        return goal_met(self.ratio, self.goal)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ratio": round(self.ratio, 3),
            "goal": self.goal,
            "candidate": self.candidate.as_json(),
            "baseline": self.baseline.as_json(),
            "extra": self.extra,
            "rounds": self.rounds,
            "when": self.when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }

    def line(self) -> str:
        parts = [f"{self.name}: ratio={self.ratio:.2f} (goal {self.goal})"]
        parts += [f"{key}={_short(self.extra[key])}" for key in self.headline if key in self.extra]
        missed = [] if self.met else [f"ratio {self.goal}"]
        missed += [goal for goal, met in self.other_goals.items() if not met]
        if missed:
            parts.append("goal missed: " + ", ".join(missed))
        return " ".join(parts)

    def write(self, folder: Path = RESULTS_DIR) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.name}.json"
        path.write_text(json.dumps(self.as_json(), indent=2) + "\n")
        return path


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def interleaved(rounds: int) -> Iterator[tuple[int, bool]]:
    """(round, candidate first?) — the order alternates so neither side always runs warm."""
    for i in range(rounds):
        yield i, i % 2 == 0


# --- load -------------------------------------------------------------------------------------


async def closed_loop(
    call: Callable[[], Awaitable[None]], total: int, concurrency: int
) -> tuple[list[float], float]:
    """``total`` calls by ``concurrency`` workers, each starting its next call when its last one
    returns. Returns every call's latency and the wall time of the whole batch (seconds)."""
    latencies: list[float] = []
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - started


# --- the broker -------------------------------------------------------------------------------


async def purge_broker(prefixes: tuple[str, ...], names: Sequence[str] = ()) -> None:
    """Delete this run's queues and exchanges: the ``names`` given, and whatever ``rabbitmqctl``
    lists under ``prefixes`` (queues the services declared themselves)."""
    queues = [n for n in names if not n.startswith("x:")]
    exchanges = [n[2:] for n in names if n.startswith("x:")]
    if shutil.which("rabbitmqctl"):
        for kind, found in (("queues", queues), ("exchanges", exchanges)):
            listed = await asyncio.to_thread(
                subprocess.run,
                ["rabbitmqctl", "-q", f"list_{kind}", "name"],
                capture_output=True,
                text=True,
            )
            found += [n for n in listed.stdout.split() if n.startswith(prefixes)]
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        for queue in dict.fromkeys(queues):
            await channel.queue_delete(queue)
        for exchange in dict.fromkeys(exchanges):
            await channel.exchange_delete(exchange)


class BrokerWatch:
    """Counts the broker closing a canary connection of ours.

    RabbitMQ is shared: another process (a fault-injection test, an operator) may close every
    connection on it. A round cut through by that measures reconnects, not the pipeline, so
    :func:`undisturbed` repeats it.
    """

    def __init__(self) -> None:
        self.closures = 0
        self._connection: aio_pika.abc.AbstractConnection | None = None
        self._closing = False

    async def open(self) -> None:
        self._connection = await aio_pika.connect(
            AMQP_URL, client_properties={"connection_name": f"bench-{RUN}-canary"}
        )
        self._connection.close_callbacks.add(self._on_close)

    def _on_close(self, *_: object) -> None:
        if not self._closing:
            self.closures += 1

    async def reopen(self) -> None:
        if self._connection is None or self._connection.is_closed:
            await self.open()

    async def close(self) -> None:
        self._closing = True
        if self._connection is not None and not self._connection.is_closed:
            await self._connection.close()


async def undisturbed(
    watch: BrokerWatch,
    measure: Callable[[], Awaitable[T]],
    settle: Callable[[], Awaitable[None]],
    attempts: int = 3,
) -> tuple[T, int]:
    """``measure()``, repeated (after ``settle()``) while the broker closes connections during
    it. Returns the result and how many attempts were thrown away."""
    for repeats in range(attempts):
        before = watch.closures
        try:
            result = await measure()
        except Exception:
            await asyncio.sleep(0.5)  # the canary's close can trail the failure it caused
            if watch.closures == before:
                raise
        else:
            if watch.closures == before:
                return result, repeats
        await watch.reopen()
        await settle()
    raise BenchError(
        f"RabbitMQ closed this run's connections during {attempts} attempts in a row "
        "(another process on the shared broker closing every connection?)"
    )


def load_average() -> float:
    """The 1-minute load average when a benchmark starts: above the core count, other work was
    competing for the CPU and the figures are noisier."""
    return round(os.getloadavg()[0], 2)


# --- isolated databases -----------------------------------------------------------------------


@dataclass
class Schema:
    """A provisioned database with one kit-shaped schema: owner (migrator) and app role URLs."""

    database: str
    schema: str
    app_url: str
    migrator_url: str

    def owner_sql(self, query: str) -> None:
        """Run DDL or bookkeeping as the schema owner."""
        with psycopg.connect(self.migrator_url.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(query)  # type: ignore[arg-type]


@contextlib.contextmanager
def provisioned_schema(label: str, schema: str) -> Iterator[Schema]:
    """A fresh database ``visiona_bench_<run>_<label>`` with ``schema`` and its two roles;
    dropped with its roles on the way out."""
    database = f"visiona_bench_{RUN}_{label}"
    roles = ServiceRoles(schema, f"_b{RUN}")
    try:
        provision(ADMIN_URL, database, services=[schema], suffix=roles.suffix)
        yield Schema(
            database,
            schema,
            role_url(ADMIN_URL, roles.app, database),
            role_url(ADMIN_URL, roles.migrator, database),
        )
    finally:
        drop(ADMIN_URL, database, [roles])


# --- the platform -----------------------------------------------------------------------------


@dataclass
class Platform:
    cfg: StackConfig
    processes: LocalStack
    issuer: DevIssuer


# The edge's rate limits stay on (their check is part of what a request costs) but far above
# what one benchmark client sends.
UNLIMITED_EDGE = {
    f"GATEWAY_{kind}_{what}": "1000000"
    for kind in ("IP", "USER", "WEBHOOK")
    for what in ("RATE_PER_S", "BURST")
}


# PostgreSQL connections of a platform: 5 processes x (pool 10 + overflow 2 + 1 LISTEN) = 65
# at most, within a stock server's 97 for non-superusers (max_connections 100). No benchmark
# sends a platform more than 8 requests at once; a benchmark without a platform sizes its
# own pools (credit_hold 32, event_pipeline 40).
PLATFORM_POOLS = {
    f"{service.upper()}_{setting}": value
    for service in SERVICES
    for setting, value in (("DB_POOL_SIZE", "10"), ("DB_POOL_OVERFLOW", "2"))
}


def bench_stack_config(
    label: str, providers: Sequence[str], extra_env: dict[str, str] | None = None
) -> StackConfig:
    """A stack of every service, the gateway, the emulators of ``providers``, the dev issuer
    and SeaweedFS, on free ports, in a state folder, database, roles, exchange and queue
    prefix of this run's own."""
    state = Path(tempfile.mkdtemp(prefix=f"visiona-bench-{label}-"))
    names = ["gateway", *SERVICES, *providers, "clerk", "s3", *WEED_PORTS]
    ports = {name: free_port() for name in names}
    return StackConfig(
        admin_url=ADMIN_URL,
        database=f"visiona_bench_{RUN}_{label}",
        amqp_url=AMQP_URL,
        ports=ports,
        state_dir=state,
        role_suffix=f"_b{RUN}",
        exchange=f"visiona.events.b{RUN}",
        queue_prefix=f"b{RUN}.",
        s3=S3Config(endpoint=f"127.0.0.1:{ports['s3']}", access_key="bench", secret_key="bench-s3"),
        log_format="json",
        extra_env=UNLIMITED_EDGE | PLATFORM_POOLS | (extra_env or {}),
    )


@contextlib.contextmanager
def running_stack(
    cfg: StackConfig, label: str, *, keep_logs_on_error: bool = True
) -> Iterator[tuple[LocalStack, DevIssuer]]:
    """``cfg``'s processes up and the dev issuer's key, until the block ends; then everything
    torn down and removed (the database, roles, queues and state folder). On failure the
    process logs are kept and their folder named (the stored objects are not)."""
    state = Path(cfg.state_dir)
    stack = LocalStack(cfg)
    failed = False
    try:
        stack.up()
        yield stack, load_or_create_key(state / "clerk", issuer=cfg.clerk_issuer)
    except BaseException:
        failed = True
        raise
    finally:
        stack.down()
        drop(ADMIN_URL, cfg.database, [cfg.roles(s) for s in SERVICES])
        asyncio.run(purge_broker((cfg.queue_prefix, cfg.exchange)))
        if failed and keep_logs_on_error:
            shutil.rmtree(state / "s3", ignore_errors=True)
            print(f"[{label}] service logs kept in {state / 'logs'}")
        else:
            shutil.rmtree(state, ignore_errors=True)


@contextlib.contextmanager
def platform(label: str, *, keep_logs_on_error: bool = True) -> Iterator[Platform]:
    """The services, gateway and emulators as processes on free ports, with SeaweedFS (the
    training service needs S3 to start, and every service writes its part of exports).
    Everything is torn down on the way out; on failure the process logs are kept and their
    folder named."""
    cfg = bench_stack_config(label, ["anthropic", "stripe"])
    with running_stack(cfg, label, keep_logs_on_error=keep_logs_on_error) as (stack, issuer):
        yield Platform(cfg, stack, issuer)
