"""The whole platform as processes for end-to-end tests: start it, reach it, restore it.

A stack runs exactly what ``make up`` runs (``visiona.emulators.stack``), on free ports, in a
database, roles, exchange and queue prefix of its own, all removed afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from tests.support.budget import EXTRA_GATEWAY_POOL_ENV, SECOND_INSTANCE_POOL_ENV, STACK_POOL_ENV
from tests.support.infra import Infra, purge_broker
from tests.support.waiting import serving
from visiona.emulators.clerk import DevIssuer, load_or_create_key
from visiona.emulators.stack import (
    LocalStack,
    S3Config,
    StackConfig,
    bin_path,
    free_port,
    processes,
    stop_process,
)
from visiona.kit.provision import BACK_SERVICES, SERVICES, drop

# What the services run with in tests, besides each run's own names and ports.
TEST_ENV = {
    # A quiet training is asked about after 2 s (not minutes), so lost webhooks and restarts
    # show within a test.
    "TRAINING_RECONCILE_QUIET_S": "2",
    "TRAINING_WORK_POLL_INTERVAL_S": "0.25",
    "TRAINING_WORK_LEASE_S": "3",
    "GENERATION_WORK_LEASE_S": "3",
    "GENERATION_RECONCILE_QUIET_S": "2",
    # A job still awaiting credits asks billing again after 2 s (a request or answer lost).
    "TRAINING_CREDITS_ASK_AGAIN_S": "2",
    "GENERATION_CREDITS_ASK_AGAIN_S": "2",
    # Ended generations' folders are swept a second after they end (not ten minutes).
    "GENERATION_OBJECT_SWEEP_GRACE_S": "1",
    "GENERATION_OBJECT_SWEEP_INTERVAL_S": "0.5",
    # Upload keys no open slot owns (posted again after completion) go within half a second.
    "TRAINING_UPLOAD_SWEEP_INTERVAL_S": "0.5",
    # Erasure and export sagas at test speed: a one-second grace, rounds asked again after
    # 10 s (a service killed mid-round), parts after 20 s.
    "GATEWAY_ERASURE_GRACE_S": "1",
    "GATEWAY_ERASURE_SETTLE_S": "0.5",
    "GATEWAY_ERASURE_ROUND_TIMEOUT_S": "10",
    "GATEWAY_EXPORT_PART_TIMEOUT_S": "20",
    "GATEWAY_SAGA_POLL_INTERVAL_S": "0.25",
    # The whole suite calls from 127.0.0.1 as a handful of users: rate limits far above
    # anything it does (test_edge starts gateways of its own with tight ones).
    "GATEWAY_IP_RATE_PER_S": "100000",
    "GATEWAY_IP_BURST": "100000",
    "GATEWAY_USER_RATE_PER_S": "100000",
    "GATEWAY_USER_BURST": "100000",
    "GATEWAY_WEBHOOK_RATE_PER_S": "100000",
    "GATEWAY_WEBHOOK_BURST": "100000",
    # Operators are who carry this role in their session token (tests/e2e/test_admin.py).
    "GATEWAY_OPERATOR_ROLE": "operator",
    # Replicate at test speed: trainings of 1.5 s (five progress logs), predictions of 0.5 s.
    "REPLICATE_EMULATOR_START_DELAY_S": "0.1",
    "REPLICATE_EMULATOR_TRAINING_DURATION_S": "1.5",
    "REPLICATE_EMULATOR_PREDICTION_DURATION_S": "0.5",
    "REPLICATE_EMULATOR_LOG_INTERVAL_S": "0.3",
    # The sampled metrics (outbox, job rows, dead letters) every second, not every 15 or 60.
    **{
        f"{service}_{setting}": "1"
        for service in ("GATEWAY", "PROMPTS", "TRAINING", "GENERATION", "BILLING")
        for setting in ("METRICS_SAMPLE_INTERVAL_S", "DEAD_LETTER_CHECK_INTERVAL_S")
    },
} | STACK_POOL_ENV
# A consumer waiting out a database or broker outage tries again at least every 2 s (not 30),
# so a fault test sees it recover soon after the dependency does.
TEST_ENV |= {
    f"{service}_CONSUMER_OUTAGE_PAUSE_MAX_S": "2"
    for service in ("GATEWAY", "PROMPTS", "TRAINING", "GENERATION", "BILLING")
}

# The host of the cross-site tests' allowed page (``RunningStack.page_port``): an origin
# GATEWAY_CORS_ORIGINS allows beside the web app's own.
WEB_APP_HOST = "127.0.0.1"

# Emulators whose fault switches and timings a test may change (``/_emulator/config``).
CONFIGURABLE = ("replicate", "stripe", "anthropic")

# The processes a stack runs besides S3 (which the session provides).
PROCESSES = (
    *("gateway", "prompts", "training", "generation", "billing"),
    *("anthropic", "stripe", "replicate", "clerk"),
)


@dataclass
class RunningStack:
    cfg: StackConfig
    processes: LocalStack
    issuer: DevIssuer
    admin_url: str  # the server's superuser (libpq conninfo)
    # The web app under test, at http://localhost:<web_port> (tests/support/web.py).
    web_port: int = 0
    # A page on an allowed origin of its own, http://127.0.0.1:<page_port> (the cross-site
    # tests' page, tests/support/browser.py): not the web app's port, which it holds.
    page_port: int = 0
    # Each configurable emulator's settings as the stack started them.
    emulator_baseline: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.cfg.gateway_url

    @property
    def web_origin(self) -> str:
        """An origin in the gateway's GATEWAY_CORS_ORIGINS, other than the gateway's own and
        the web app's: where a test serves a page of its own."""
        return f"http://{WEB_APP_HOST}:{self.page_port}"

    def token(self, user: str, **kwargs: object) -> str:
        return self.issuer.issue(user, **kwargs)  # type: ignore[arg-type]

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user)}"}

    def service_url(self, service: str) -> str:
        """libpq URL of a service's app role (what the service itself connects as)."""
        return self.cfg.database_url(self.cfg.roles(service).app).replace("+psycopg", "")

    def admin_sql(self, query: str, *params: object) -> list[tuple[object, ...]]:
        """Inspect the run's database as a superuser (RLS does not apply)."""
        url = psycopg.conninfo.make_conninfo(self.admin_url, dbname=self.cfg.database)
        with psycopg.connect(url, autocommit=True) as conn:
            cur = conn.execute(query, params or None)
            return cur.fetchall() if cur.description else []

    def metrics_url(self, service: str) -> str:
        """Where ``service`` serves /metrics: the gateway on its own port, a back service on
        its metrics port."""
        if service == "gateway":
            return f"{self.url}/metrics"
        return f"http://127.0.0.1:{self.cfg.ports[f'{service}-metrics']}/metrics"

    def emulator_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.cfg.ports[name]}"

    def emulator_configs(self) -> dict[str, Any]:
        return {
            name: httpx.get(f"{self.emulator_url(name)}/_emulator/config", timeout=10).json()
            for name in CONFIGURABLE
        }

    def restore_emulators(self) -> list[str]:
        """Put every emulator's fault switches and timings back as the stack started them
        (and Clerk's webhooks flowing); name the emulators that had been changed."""
        changed = []
        for name, config in self.emulator_configs().items():
            if config != self.emulator_baseline[name]:
                httpx.post(
                    f"{self.emulator_url(name)}/_emulator/config",
                    json=self.emulator_baseline[name],
                    timeout=10,
                ).raise_for_status()
                changed.append(name)
        httpx.post(f"{self.cfg.clerk_issuer}/_emulator/webhooks/resume", timeout=10)
        return changed

    def restart_dead(self) -> list[str]:
        """Start every process a test left stopped or dead; name them."""
        restarted = []
        for name in PROCESSES:
            proc = self.processes.procs.get(name)
            if proc is None or proc.poll() is not None:
                self.processes.procs.pop(name, None)
                self.processes.start(name)
                restarted.append(name)
        return restarted


@contextlib.contextmanager
def running_stack(infra: Infra, s3: S3Config, state: Path, name: str) -> Iterator[RunningStack]:
    """The whole platform for one pytest session; ``name`` tags its database, roles, exchange
    and queues (``<run>`` plus a letter: the shared stack and the disruptive tests' own)."""
    ports = {service: free_port() for service in PROCESSES}
    ports |= {f"{service}-metrics": free_port() for service in BACK_SERVICES}
    web_port, page_port = free_port(), free_port()
    cfg = StackConfig(
        admin_url=infra.admin_url,
        database=f"visiona_test_{name}",
        amqp_url=infra.amqp_url,
        ports=ports,
        state_dir=state,
        role_suffix=f"_t{name}",
        exchange=f"visiona.events.t{name}",
        queue_prefix=f"t{name}.",
        s3=s3,
        # The session's SeaweedFS runs with an SSE-S3 key.
        s3_sse="s3",
        extra_env=TEST_ENV,
        # The web app under test is served at localhost:<web_port> (tests/support/web.py; the
        # first origin: Stripe sends the browser back there); the dev issuer's default party;
        # the cross-site tests' page at 127.0.0.1:<page_port>.
        web_origins=(
            f"http://localhost:{web_port}",
            "http://localhost:3000",
            f"http://{WEB_APP_HOST}:{page_port}",
        ),
    )
    processes = LocalStack(cfg)
    try:
        processes.up()
        issuer = load_or_create_key(state / "clerk", issuer=cfg.clerk_issuer)
        running = RunningStack(
            cfg, processes, issuer, infra.admin_url, web_port=web_port, page_port=page_port
        )
        running.emulator_baseline = running.emulator_configs()
        yield running
    finally:
        processes.down()
        drop(infra.admin_url, cfg.database, [cfg.roles(s) for s in SERVICES])
        asyncio.run(purge_broker(infra, (f"t{name}.", f"visiona.events.t{name}")))


@contextlib.contextmanager
def extra_gateway(stack: RunningStack, **env: str) -> Iterator[str]:
    """Another gateway instance beside the stack's, with settings of the test's choosing."""
    port = free_port()
    cfg = stack.cfg
    environ = (
        cfg.base_env()
        | cfg.gateway_env()
        | EXTRA_GATEWAY_POOL_ENV
        | {"GATEWAY_PORT": str(port)}
        | env
    )
    log_path = Path(cfg.state_dir) / "logs" / f"gateway-{port}.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [bin_path("visiona-gateway"), "serve"], env=environ, stdout=log, stderr=log
        )
    url = f"http://127.0.0.1:{port}"
    try:
        serving(proc, f"{url}/healthz", log=log_path)
        yield url
    finally:
        stop_process(proc, 15)


@dataclass
class SecondInstances:
    """The second instance of every back service, beside a running stack's first."""

    cfg: StackConfig  # the stack's configuration with two instances of each service
    procs: dict[str, subprocess.Popen[bytes]]

    def name(self, service: str) -> str:
        return self.cfg.instance_names(service)[1]

    def metrics_url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.cfg.ports[f'{self.name(service)}-metrics']}/metrics"

    def gateway_env(self) -> dict[str, str]:
        """A gateway's addresses listing both instances of every back service."""
        return {
            f"GATEWAY_{service.upper()}_ADDR": self.cfg.grpc_target(service)
            for service in BACK_SERVICES
        }


@contextlib.contextmanager
def second_instances(stack: RunningStack) -> Iterator[SecondInstances]:
    """Start ``<service>-2`` of every back service against the stack's database, exchange and
    queues (the stack's own environment builder, small pools: tests/support/budget.py), whose
    clients list both instances; wait until each is ready (gRPC health: its database, broker
    and consumers), and stop them cleanly (SIGTERM, their exit status 0) afterwards."""
    cfg = dataclasses.replace(
        stack.cfg,
        instances=2,
        ports=dict(stack.cfg.ports),
        extra_env=stack.cfg.extra_env | SECOND_INSTANCE_POOL_ENV,
    )
    specs = processes(cfg)
    log_dir = Path(cfg.state_dir) / "logs"
    procs: dict[str, subprocess.Popen[bytes]] = {}
    running = SecondInstances(cfg, procs)
    try:
        for service in BACK_SERVICES:
            name = running.name(service)
            argv, env = specs[name]
            with (log_dir / f"{name}.log").open("ab") as log:
                procs[name] = subprocess.Popen(argv, env=env, stdout=log, stderr=log)
        for service in BACK_SERVICES:
            name = running.name(service)
            _wait_grpc_ready(procs[name], cfg.ports[name], log_dir / f"{name}.log")
        yield running
    finally:
        codes = {name: stop_process(proc, 15) for name, proc in procs.items()}
        stopped = {name: code for name, code in codes.items() if code != 0}
        assert not stopped, f"second instances did not stop cleanly: {stopped}"


def _wait_grpc_ready(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    import time

    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    deadline = time.monotonic() + 120
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
            try:
                answer = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"not ready after 120 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
