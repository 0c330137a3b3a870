"""gateway_tax: what the REST edge costs on top of the gRPC call it makes.

Candidate: ``GET /v1/usage`` with a bearer token — HTTP/1.1 keep-alive → gateway (request
context, Clerk JWT verification, routing) → gRPC ``BillingService.GetUsageSummary`` → billing →
Postgres → JSON. Baseline: the same RPC with the same metadata, called directly from this
process over grpc.aio, with an internal token minted as the gateway mints it (cached per user,
so both sides pay the same). Both hit the same billing process and the same database row set.

Each round: a closed loop of ``LOAD_REQUESTS`` calls at ``CONCURRENCY`` in flight (gives rps),
then ``SEQUENTIAL_REQUESTS`` calls one at a time (gives p50/p99 without queueing). The side that
goes first alternates by round. ratio = candidate rps ÷ baseline rps (medians over rounds).
"""

from __future__ import annotations

import asyncio
import statistics
import uuid
from collections.abc import Awaitable, Callable

import grpc
import httpx

from bench.common import (
    BenchError,
    Measurement,
    Platform,
    Result,
    closed_loop,
    goal_met,
    interleaved,
    load_average,
    platform,
)
from visiona.billing.v1 import billing_pb2, billing_pb2_grpc
from visiona.kit.grpcserver import INTERNAL_TOKEN_KEY, REQUEST_ID_KEY
from visiona.kit.internal_token import Minter

NAME = "gateway_tax"
GOAL = ">= 0.5"
GOAL_ADDED_P50_MS = "<= 1"
CONCURRENCY = 8
LOAD_REQUESTS = 1500
SEQUENTIAL_REQUESTS = 300
WARMUP_REQUESTS = 300
USER = "bench-user"
# The gateway's channel options (visiona.gateway.clients), so both sides use alike channels.
CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.enable_retries", 1),
]
NOTES = (
    "The load generator (httpx and grpc.aio clients, one asyncio loop) shares the machine's "
    "2 cores with the gateway, billing, Postgres and the idle services, so absolute figures "
    "are pessimistic for both sides; the candidate also pays httpx's client-side cost, which "
    "gateway_healthz_p50_ms (same client, no auth, no gRPC) helps to separate. "
    "p50/p99 are sequential (1 in flight); rps is the closed loop at the stated concurrency."
)

Call = Callable[[], Awaitable[None]]


async def _measure(stack: Platform, rounds: int) -> Result:
    token = stack.issuer.issue(USER)
    user_id = f"user_{USER}"  # the token's `sub`, as the gateway passes it on
    minter = Minter(stack.cfg.internal_token_secret, issuer="gateway")
    request = billing_pb2.GetUsageSummaryRequest()
    http = httpx.AsyncClient(
        base_url=stack.cfg.gateway_url,
        headers={"Authorization": f"Bearer {token}"},
        limits=httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY),
        timeout=10.0,
    )
    channel = grpc.aio.insecure_channel(
        f"127.0.0.1:{stack.cfg.ports['billing']}", options=CHANNEL_OPTIONS
    )
    stub = billing_pb2_grpc.BillingServiceStub(channel)

    async def through_gateway() -> None:
        response = await http.get("/v1/usage")
        if response.status_code != 200:
            raise BenchError(f"GET /v1/usage answered {response.status_code}: {response.text}")

    async def direct() -> None:
        await stub.GetUsageSummary(
            request,
            timeout=10.0,
            metadata=(
                (INTERNAL_TOKEN_KEY, minter.token(user_id)),
                (REQUEST_ID_KEY, uuid.uuid4().hex),
            ),
        )

    async def healthz() -> None:
        response = await http.get("/healthz")
        if response.status_code != 200:
            raise BenchError(f"GET /healthz answered {response.status_code}")

    sides: dict[str, Call] = {"candidate": through_gateway, "baseline": direct}
    load: dict[str, list[Measurement]] = {"candidate": [], "baseline": []}
    single: dict[str, list[Measurement]] = {"candidate": [], "baseline": []}
    floor: list[Measurement] = []
    load_at_start = load_average()
    try:
        # Warm-up: connections, JWKS cache, gRPC channels, the DB pools and plan caches.
        for call in (through_gateway, direct, healthz):
            await closed_loop(call, WARMUP_REQUESTS, CONCURRENCY)
        for _, candidate_first in interleaved(rounds):
            order = ["candidate", "baseline"] if candidate_first else ["baseline", "candidate"]
            for side in order:
                load[side].append(
                    Measurement.of(*await closed_loop(sides[side], LOAD_REQUESTS, CONCURRENCY))
                )
            for side in order:
                single[side].append(
                    Measurement.of(*await closed_loop(sides[side], SEQUENTIAL_REQUESTS, 1))
                )
            floor.append(Measurement.of(*await closed_loop(healthz, SEQUENTIAL_REQUESTS, 1)))
    finally:
        await http.aclose()
        await channel.close()

    def reported(side: str) -> Measurement:
        latency = Measurement.median(single[side])
        return Measurement(latency.p50_ms, latency.p99_ms, Measurement.median(load[side]).rps)

    candidate, baseline = reported("candidate"), reported("baseline")
    added_p50 = candidate.p50_ms - baseline.p50_ms
    added_p99 = candidate.p99_ms - baseline.p99_ms
    loaded = {side: Measurement.median(load[side]) for side in sides}
    goal_p50 = f"added_p50_ms {GOAL_ADDED_P50_MS}"
    p50_met = goal_met(added_p50, GOAL_ADDED_P50_MS)
    return Result(
        name=NAME,
        ratio=candidate.rps / baseline.rps,
        goal=GOAL,
        candidate=candidate,
        baseline=baseline,
        rounds=rounds,
        extra={
            "added_p50_ms": round(added_p50, 3),
            "added_p99_ms": round(added_p99, 3),
            "goal_added_p50_ms": GOAL_ADDED_P50_MS,
            "added_p50_goal_met": p50_met,
            "concurrency": CONCURRENCY,
            "load_requests_per_round": LOAD_REQUESTS,
            "sequential_requests_per_round": SEQUENTIAL_REQUESTS,
            "candidate_loaded_p50_ms": round(loaded["candidate"].p50_ms, 3),
            "candidate_loaded_p99_ms": round(loaded["candidate"].p99_ms, 3),
            "baseline_loaded_p50_ms": round(loaded["baseline"].p50_ms, 3),
            "baseline_loaded_p99_ms": round(loaded["baseline"].p99_ms, 3),
            "gateway_healthz_p50_ms": round(Measurement.median(floor).p50_ms, 3),
            "candidate_rps": round(candidate.rps, 1),
            "baseline_rps": round(baseline.rps, 1),
            "ratio_by_round": [
                round(c.rps / b.rps, 3)
                for c, b in zip(load["candidate"], load["baseline"], strict=True)
            ],
            "ratio_spread": round(
                statistics.pstdev(
                    c.rps / b.rps for c, b in zip(load["candidate"], load["baseline"], strict=True)
                ),
                3,
            ),
            "load_avg_1m_at_start": load_at_start,
            "notes": NOTES,
        },
        headline=("added_p50_ms", "added_p99_ms", "candidate_rps", "baseline_rps"),
        other_goals={goal_p50: p50_met},
    )


def run(rounds: int) -> Result:
    with platform("gw") as stack:
        return asyncio.run(_measure(stack, rounds))
