"""webhook_ingest_overhead: a signed Stripe webhook through the platform against a trivial endpoint.

Candidate: ``POST /webhooks/stripe`` on the real gateway, with a signed Stripe event of a type
billing does not act on (``customer.created``): gateway (request context, size checks) → gRPC
``BillingService.IngestStripeEvent`` → billing verifies ``Stripe-Signature`` on the raw body
with the Stripe SDK, stores the event under its id in ``billing.stripe_events`` (closed as
``ignored``) in one transaction → 200. That is the whole ingest path every Stripe delivery
takes before anything acts on it.

Baseline: a trivial FastAPI app (``POST /`` reads the body and returns ``{"ok": true}``) on
uvicorn in its own process, with the gateway's uvicorn settings, receiving the same bodies
and headers.

Both at the same fixed rate (open loop: request n is sent at start + n ÷ ``RATE`` whether or
not earlier ones have answered), from one httpx ``AsyncClient`` keep-alive pool per side. The
bodies are built and signed before each round's clock starts. Latency = response received -
request sent, per request. ratio = candidate p99 ÷ baseline p99 (medians over rounds; the
side that goes first alternates by round); lower is better. Every request must answer 200,
and afterwards ``billing.stripe_events`` must hold every event sent, once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import stripe
import uvicorn
from fastapi import FastAPI, Request
from psycopg.conninfo import make_conninfo

from bench.common import (
    ADMIN_URL,
    BenchError,
    Measurement,
    Platform,
    Result,
    closed_loop,
    interleaved,
    load_average,
    percentile,
    platform,
)
from visiona.emulators.ports import free_port
from visiona.emulators.stripe._customers import new_customer
from visiona.emulators.stripe._store import JSON, Store

NAME = "webhook_ingest_overhead"
GOAL = "<= 3"
# Requests/s on both sides: well under the candidate's capacity here (about 150-250/s on the
# 2 shared cores, see candidate_capacity_rps), so the p99 is the path's and not a backlog's.
RATE = 100.0
ROUND_S = 2.0  # per side and round: 200 requests (the platform's start takes half of a run)
WARMUP_S = 1.0
CAPACITY_REQUESTS = 300  # closed loop, once, for candidate_capacity_rps
CAPACITY_CONCURRENCY = 8
MAX_CONNECTIONS = 64
TIMEOUT_S = 10.0
EVENT_TYPE = "customer.created"  # verified, stored and closed as "ignored" by billing
ROOT = Path(__file__).resolve().parents[1]

Signed = tuple[bytes, dict[str, str]]  # body, headers


class _Undelivered:
    """The emulator's event sink for events made outside its server: nothing is sent."""

    def wants_events(self) -> bool:
        return True

    def publish(self, event: JSON, payload: str) -> None:
        pass


def _event(created: int) -> JSON:
    """A Stripe event of a type billing ignores, made as the Stripe emulator makes the ones it
    delivers (so shaped and sized like a real delivery)."""
    store = Store(sink=_Undelivered(), clock=lambda: created)
    customer = new_customer(store, metadata={"user_id": f"user_{secrets.token_hex(6)}"})
    return store.emit(EVENT_TYPE, customer)


def signed_requests(count: int, secret: str) -> tuple[list[Signed], list[str]]:
    """``count`` event bodies with their ``Stripe-Signature`` headers (signed now), and ids."""
    now = int(time.time())
    requests: list[Signed] = []
    ids: list[str] = []
    for _ in range(count):
        event = _event(now)
        payload = json.dumps(event, separators=(",", ":"))
        signature = stripe.WebhookSignature.generate_signature_header(payload, secret)
        requests.append(
            (
                payload.encode(),
                {"Content-Type": "application/json", "Stripe-Signature": signature},
            )
        )
        ids.append(str(event["id"]))
    return requests, ids


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux ``/proc``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Sender:
    """One side's client (an httpx keep-alive pool): sends requests and times each answer.

    ``servers`` are the processes that serve this side; their CPU time over the measured rounds
    is added up, as is this process's own (the client's)."""

    def __init__(self, base_url: str, path: str, servers: dict[str, int]) -> None:
        self.path = path
        self.servers = servers
        self.cpu_s: dict[str, float] = dict.fromkeys([*servers, "client"], 0.0)
        self.measured = 0
        self.client = httpx.AsyncClient(
            base_url=base_url,
            limits=httpx.Limits(
                max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS
            ),
            timeout=TIMEOUT_S,
        )
        self.errors: list[str] = []
        self.latencies: list[float] = []  # of every measured round, for the pooled p99

    async def post(self, body: bytes, headers: dict[str, str]) -> float | None:
        """One request; its latency (send to answer, seconds), or None (an error, noted)."""
        started = time.perf_counter()
        try:
            response = await self.client.post(self.path, content=body, headers=headers)
        except httpx.HTTPError as exc:
            self.errors.append(f"{type(exc).__name__}: {exc}")
            return None
        latency = time.perf_counter() - started
        if response.status_code != 200:
            self.errors.append(f"{response.status_code}: {response.text[:200]}")
            return None
        return latency

    def _check(self, count: int) -> None:
        if self.errors:
            raise BenchError(
                f"{len(self.errors)} of {count} requests to {self.client.base_url}{self.path} "
                f"failed, e.g. {self.errors[:3]}"
            )

    async def paced(self, requests: list[Signed], rate: float) -> tuple[Measurement, float]:
        """Open loop: request n leaves at start + n ÷ rate, answered or not. Returns latencies
        (rps = requests ÷ (last answer - first send)) and how far the sender fell behind its
        schedule at worst (ms)."""
        latencies: list[float] = []
        finished: list[float] = []
        late = 0.0

        async def one(body: bytes, headers: dict[str, str]) -> None:
            latency = await self.post(body, headers)
            if latency is not None:
                latencies.append(latency)
                finished.append(time.perf_counter())

        tasks = []
        cpu = {name: cpu_seconds(pid) for name, pid in self.servers.items()}
        cpu["client"] = time.process_time()
        began = time.perf_counter()
        for n, (body, headers) in enumerate(requests):
            due = began + n / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            late = max(late, time.perf_counter() - due)
            tasks.append(asyncio.create_task(one(body, headers)))
        await asyncio.gather(*tasks)
        cpu["client"] = time.process_time() - cpu["client"]
        for name, pid in self.servers.items():
            cpu[name] = cpu_seconds(pid) - cpu[name]
        self._check(len(requests))
        self.latencies += latencies
        for name, used in cpu.items():
            self.cpu_s[name] += used
        self.measured += len(requests)
        return Measurement.of(latencies, max(finished) - began), late * 1000

    async def capacity(self, requests: list[Signed], concurrency: int) -> float:
        """Closed loop at ``concurrency`` in flight: requests/s the side sustains."""
        pending = iter(requests)

        async def one() -> None:
            await self.post(*next(pending))

        _, elapsed = await closed_loop(one, len(requests), concurrency)
        self._check(len(requests))
        return len(requests) / elapsed

    def cpu_ms_per_request(self) -> dict[str, float]:
        return {name: round(used * 1000 / self.measured, 3) for name, used in self.cpu_s.items()}

    async def close(self) -> None:
        await self.client.aclose()


# --- the baseline server ------------------------------------------------------------------------


def serve_baseline(port: int) -> None:
    """The trivial endpoint, on uvicorn with the gateway's settings (visiona.gateway.__main__)."""
    app = FastAPI()

    @app.post("/")
    async def receive(request: Request) -> dict[str, bool]:
        await request.body()
        return {"ok": True}

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        timeout_graceful_shutdown=10,
    )


@contextmanager
def baseline_server() -> Iterator[tuple[str, int]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.webhook_ingest_overhead", "--serve-baseline", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise BenchError(f"the baseline server exited with {process.returncode}")
            try:
                if httpx.post(url + "/", content=b"{}", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise BenchError("the baseline server did not answer within 30 s")
            time.sleep(0.1)
        yield url, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- the measurement ----------------------------------------------------------------------------


def stored_events(stack: Platform, ids: list[str]) -> tuple[int, int]:
    """How many of ``ids`` billing stored, and how many of those it closed as ignored."""
    admin = make_conninfo(ADMIN_URL, dbname=stack.cfg.database)
    with psycopg.connect(admin, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE outcome = 'ignored' AND processed_at IS NOT "
            "NULL) FROM billing.stripe_events WHERE id = ANY(%s)",
            (ids,),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


async def _measure(stack: Platform, server: tuple[str, int], rounds: int) -> Result:
    secret = stack.cfg.stripe_webhook_secret
    procs = stack.processes.procs
    sides = {
        "candidate": Sender(
            stack.cfg.gateway_url,
            "/webhooks/stripe",
            {name: procs[name].pid for name in ("gateway", "billing")},
        ),
        "baseline": Sender(server[0], "/", {"server": server[1]}),
    }
    measured: dict[str, list[Measurement]] = {"candidate": [], "baseline": []}
    lateness: dict[str, list[float]] = {"candidate": [], "baseline": []}
    sent_ids: list[str] = []
    per_round = int(RATE * ROUND_S)
    load_at_start = load_average()
    try:
        # Warm-up: connections, the gRPC channel, billing's pool and plan caches.
        for side, sender in sides.items():
            requests, ids = signed_requests(int(RATE * WARMUP_S), secret)
            await sender.paced(requests, RATE)
            if side == "candidate":
                sent_ids += ids
        # How much the candidate sustains at all: context for RATE, not part of the ratio.
        requests, ids = signed_requests(CAPACITY_REQUESTS, secret)
        capacity = await sides["candidate"].capacity(requests, CAPACITY_CONCURRENCY)
        sent_ids += ids
        for _, candidate_first in interleaved(rounds):
            # Signed before the clock starts; both sides get the same bytes.
            requests, ids = signed_requests(per_round, secret)
            order = ["candidate", "baseline"] if candidate_first else ["baseline", "candidate"]
            for side in order:
                measurement, late_ms = await sides[side].paced(requests, RATE)
                measured[side].append(measurement)
                lateness[side].append(late_ms)
            sent_ids += ids
    finally:
        for sender in sides.values():
            await sender.close()

    stored, ignored = await asyncio.to_thread(stored_events, stack, sent_ids)
    if stored != len(sent_ids) or ignored != stored:
        raise BenchError(
            f"{len(sent_ids)} events sent and acknowledged, but billing.stripe_events holds "
            f"{stored} of them ({ignored} closed as ignored)"
        )

    candidate = Measurement.median(measured["candidate"])
    baseline = Measurement.median(measured["baseline"])
    by_round = [
        c.p99_ms / b.p99_ms
        for c, b in zip(measured["candidate"], measured["baseline"], strict=True)
    ]
    return Result(
        name=NAME,
        ratio=candidate.p99_ms / baseline.p99_ms,
        goal=GOAL,
        candidate=candidate,
        baseline=baseline,
        rounds=rounds,
        extra={
            "candidate_p50_ms": round(candidate.p50_ms, 3),
            "candidate_p99_ms": round(candidate.p99_ms, 3),
            "baseline_p50_ms": round(baseline.p50_ms, 3),
            "baseline_p99_ms": round(baseline.p99_ms, 3),
            "added_p50_ms": round(candidate.p50_ms - baseline.p50_ms, 3),
            "target_rps": RATE,
            "candidate_achieved_rps": round(candidate.rps, 1),
            "baseline_achieved_rps": round(baseline.rps, 1),
            "candidate_pooled_p99_ms": round(
                percentile(sides["candidate"].latencies, 99) * 1000, 3
            ),
            "baseline_pooled_p99_ms": round(percentile(sides["baseline"].latencies, 99) * 1000, 3),
            "candidate_capacity_rps": round(capacity, 1),
            "capacity_concurrency": CAPACITY_CONCURRENCY,
            "candidate_cpu_ms_per_request": sides["candidate"].cpu_ms_per_request(),
            "baseline_cpu_ms_per_request": sides["baseline"].cpu_ms_per_request(),
            "errors": sum(len(s.errors) for s in sides.values()),
            "events_sent": len(sent_ids),
            "events_stored": stored,
            "requests_per_side_per_round": per_round,
            "body_bytes": statistics.median(len(body) for body, _ in requests),
            "max_send_lateness_ms": {s: round(max(v), 2) for s, v in lateness.items()},
            "ratio_by_round": [round(r, 3) for r in by_round],
            "ratio_spread": round(statistics.pstdev(by_round), 3),
            "load_avg_1m_at_start": load_at_start,
            "notes": (
                "Open loop at target_rps on both sides; latency is per request from send to "
                "answer, so it includes the httpx client's own cost on both sides. achieved_rps "
                "= requests ÷ (last answer - first send). The load generator shares the "
                "machine's 2 cores with the gateway, billing, Postgres and the idle services. "
                "The candidate is gateway → gRPC → billing (signature check, one INSERT, "
                "commit); the baseline uvicorn process does nothing but read the body."
            ),
        },
        headline=(
            "candidate_p50_ms",
            "candidate_p99_ms",
            "baseline_p50_ms",
            "baseline_p99_ms",
            "candidate_achieved_rps",
        ),
    )


def run(rounds: int) -> Result:
    with platform("webhook") as stack, baseline_server() as server:
        return asyncio.run(_measure(stack, server, rounds))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="the benchmark's baseline server")
    parser.add_argument("--serve-baseline", type=int, metavar="PORT", required=True)
    serve_baseline(parser.parse_args().serve_baseline)
