"""The whole platform on the run's private servers: what runs, how it is probed and restarted.

:class:`ChaosPlatform` owns the private PostgreSQL and RabbitMQ (``servers``), SeaweedFS, the
emulators, the four services and the gateway (``LocalStack``), all in one temporary folder on
free ports. It answers the questions the nemesis and the invariants ask (is the gateway
ready, what do the databases, the bucket, the queues and Stripe hold) and restarts whatever
died on its own, as an orchestrator would.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from minio import Minio

from bench.chaos.servers import PrivatePostgres, PrivateRabbitMQ
from bench.common import PLATFORM_POOLS, UNLIMITED_EDGE
from visiona.emulators.clerk import DevIssuer, load_or_create_key
from visiona.emulators.ports import free_port
from visiona.emulators.stack import WEED_PORTS, LocalStack, S3Config, StackConfig
from visiona.kit.provision import SERVICES

# The five processes the nemesis kills and stops (the gateway among them).
TARGETS = ("gateway", "training", "generation", "billing", "prompts")
DATABASE = "visiona_chaos"

# Stripe retries a failed webhook for three days; the emulator's default schedule gives up
# after about 19 s, which an outage of a few restarts outlasts. This one keeps trying for
# about ten minutes, longer than any outage of a run plus its settling.
WEBHOOK_RETRY_DELAYS_S = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0, *([20.0] * 28))

# Timings. Providers at test speed (a training of 1.5 s, a prediction of 0.5 s), and the
# safety nets whose production periods outlast a run (reconcilers asking about a quiet job,
# open Stripe events staged again, hold expiry and its sweep) shortened so they act within it:
# a run then shows whether they work, as they would over hours in production.
CHAOS_ENV = {
    "REPLICATE_EMULATOR_START_DELAY_S": "0.1",
    "REPLICATE_EMULATOR_TRAINING_DURATION_S": "1.5",
    "REPLICATE_EMULATOR_PREDICTION_DURATION_S": "0.5",
    "REPLICATE_EMULATOR_LOG_INTERVAL_S": "0.3",
    "STRIPE_EMULATOR_RETRY_DELAYS_S": ",".join(str(d) for d in WEBHOOK_RETRY_DELAYS_S),
    "TRAINING_RECONCILE_QUIET_S": "2",
    "TRAINING_WORK_POLL_INTERVAL_S": "0.25",
    "TRAINING_WORK_LEASE_S": "3",
    "GENERATION_RECONCILE_QUIET_S": "2",
    "GENERATION_WORK_LEASE_S": "3",
    "BILLING_HOLD_SWEEP_INTERVAL_S": "5",
    "BILLING_STRIPE_RESTAGE_AFTER_S": "30",
    "BILLING_STRIPE_RESTAGE_INTERVAL_S": "5",
    # Hold lifetimes (read by billing once it has these settings; before that the
    # catalogue's 30 min and 4 h apply and a hold whose outcome is lost stays open).
    "BILLING_HOLD_TTL_GENERATION_S": "120",
    "BILLING_HOLD_TTL_TRAINING_S": "600",
}

TERMINAL = ("succeeded", "failed", "canceled")


@dataclass
class Exit:
    """A process that died without the nemesis killing it (restarted by :meth:`supervise`)."""

    name: str
    returncode: int | None
    at: float  # time.monotonic()


@dataclass
class ChaosPlatform:
    state: Path
    pg: PrivatePostgres
    mq: PrivateRabbitMQ
    cfg: StackConfig
    stack: LocalStack
    issuer: DevIssuer
    exits: list[Exit] = field(default_factory=list)
    # Processes the nemesis holds down on purpose: supervision leaves them alone.
    held: set[str] = field(default_factory=set)
    # Set by the run when it found violations: the logs are kept for the evidence.
    keep_logs: bool = False

    # --- reaching it ---------------------------------------------------------------------------

    @property
    def gateway_url(self) -> str:
        return self.cfg.gateway_url

    @property
    def stripe_url(self) -> str:
        return self.cfg.stripe_url

    def emulator_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.cfg.ports[name]}"

    @property
    def database_url(self) -> str:
        return psycopg.conninfo.make_conninfo(self.pg.admin_url, dbname=self.cfg.database)

    async def sql(self, query: str, *params: object) -> list[tuple[Any, ...]]:
        """Read the run's database as the private server's superuser (no row-level security)."""
        async with await psycopg.AsyncConnection.connect(
            self.database_url, autocommit=True, connect_timeout=5
        ) as conn:
            cur = await conn.execute(query, params or None)  # type: ignore[arg-type]
            return await cur.fetchall() if cur.description else []

    def s3(self) -> Minio:
        assert self.cfg.s3 is not None
        return Minio(
            self.cfg.s3.endpoint,
            access_key=self.cfg.s3.access_key,
            secret_key=self.cfg.s3.secret_key,
            secure=False,
        )

    async def ready(self, client: httpx.AsyncClient) -> bool:
        """The gateway's /readyz answers ready (every service and dependency)."""
        try:
            response = await client.get(f"{self.gateway_url}/readyz", timeout=2.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def pending_webhooks(self) -> dict[str, int]:
        """Webhooks the Stripe and Replicate emulators still mean to deliver."""
        pending: dict[str, int] = {}
        async with httpx.AsyncClient(timeout=5) as client:
            for name in ("stripe", "replicate"):
                response = await client.get(
                    f"{self.emulator_url(name)}/_emulator/deliveries/pending"
                )
                pending[name] = int(response.json()["pending"])
        return pending

    # --- processes -------------------------------------------------------------------------------

    def pid(self, name: str) -> int | None:
        proc = self.stack.procs.get(name)
        return proc.pid if proc is not None and proc.poll() is None else None

    def supervise(self) -> list[Exit]:
        """Start every stack process that is not running (unless the nemesis holds it down),
        and the servers; returns the processes found dead."""
        found: list[Exit] = []
        for name in self.stack.specs:
            if name in self.held:
                continue
            proc = self.stack.procs.get(name)
            if proc is not None and proc.poll() is None:
                continue
            found.append(Exit(name, proc.returncode if proc else None, time.monotonic()))
            self.stack.procs.pop(name, None)
            self.stack.start(name)
        if "postgres" not in self.held and not self.pg.running():
            found.append(Exit("postgres", None, time.monotonic()))
            self.pg.start()
        if "rabbitmq" not in self.held and not self.mq.running():
            found.append(Exit("rabbitmq", None, time.monotonic()))
            self.mq.start()
        self.exits += found
        return found

    def resume_all(self) -> None:
        """SIGCONT every stack process (one the nemesis stopped and did not get to resume)."""
        for proc in self.stack.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGCONT)


def stack_config(state: Path, pg: PrivatePostgres, mq: PrivateRabbitMQ) -> StackConfig:
    names = ["gateway", *SERVICES, "anthropic", "stripe", "replicate", "clerk", "s3"]
    ports = {name: free_port() for name in [*names, *WEED_PORTS]}
    fields = {f.name for f in dataclasses.fields(StackConfig)}
    extra: dict[str, Any] = {}
    if "webhook_retry_delays_s" in fields:  # StackConfig sets the schedule of every emulator
        extra["webhook_retry_delays_s"] = WEBHOOK_RETRY_DELAYS_S
    return StackConfig(
        admin_url=pg.admin_url,
        database=DATABASE,
        amqp_url=mq.amqp_url,
        ports=ports,
        state_dir=state / "stack",
        s3=S3Config(endpoint=f"127.0.0.1:{ports['s3']}", access_key="chaos", secret_key="chaos-s3"),
        log_format="json",
        extra_env=UNLIMITED_EDGE | PLATFORM_POOLS | CHAOS_ENV,
        **extra,
    )


@contextlib.contextmanager
def chaos_platform(run: str, log: Any = print) -> Iterator[ChaosPlatform]:
    """Private servers and the whole platform, torn down on the way out (also on Ctrl-C or
    an error). The folder goes too, unless the run failed (it raised, or set
    ``keep_logs``): then the data goes, the logs stay and their folder is named."""
    state = Path(tempfile.mkdtemp(prefix=f"visiona-chaos-{run}-"))
    pg = PrivatePostgres(state)
    mq = PrivateRabbitMQ(state, f"chaos{run}")
    stack: LocalStack | None = None
    platform: ChaosPlatform | None = None
    failed = True
    try:
        started = time.monotonic()
        pg.init()
        pg.start()
        mq.init()
        mq.start()
        log(
            f"private servers up in {time.monotonic() - started:.0f} s: PostgreSQL on "
            f"{pg.port}, RabbitMQ {mq.node} on {mq.port}"
        )
        cfg = stack_config(state, pg, mq)
        stack = LocalStack(cfg)
        stack.up()
        issuer = load_or_create_key(cfg.state_dir / "clerk", issuer=cfg.clerk_issuer)
        platform = ChaosPlatform(state, pg, mq, cfg, stack, issuer)
        log(f"platform ready in {time.monotonic() - started:.0f} s (gateway {cfg.gateway_url})")
        yield platform
        failed = platform.keep_logs
    finally:
        if platform is not None:
            platform.resume_all()
        if stack is not None:
            stack.down()
        pg.stop()
        mq.stop()
        if failed:
            for data in (pg.data, mq.folder / "mnesia", state / "stack" / "s3"):
                shutil.rmtree(data, ignore_errors=True)
            log(f"logs kept in {state} (services: {state / 'stack' / 'logs'})")
        else:
            shutil.rmtree(state, ignore_errors=True)


async def wait_ready(platform: ChaosPlatform, timeout_s: float) -> float | None:
    """Poll /readyz (restarting what died meanwhile) until ready; the monotonic time it first
    answered ready, or None after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if await platform.ready(client):
                return time.monotonic()
            await asyncio.to_thread(platform.supervise)
            await asyncio.sleep(0.1)
    return None
