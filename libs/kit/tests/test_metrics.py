"""The kit's metrics: exemplars (only in the OpenMetrics exposition, only of a sampled span),
provider outcomes, the gRPC server and client counts, and the job sampler's arithmetic.

Counters live in the process's one registry, so each test reads a value before and after.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from prometheus_client import REGISTRY, Histogram
from replicate.exceptions import ReplicateError

from visiona.emulators.ports import free_port
from visiona.kit import metrics
from visiona.kit.errors import NotFound
from visiona.kit.grpcserver import INTERNAL_TOKEN_KEY, create_server
from visiona.kit.internal_token import MIN_SECRET_BYTES, Minter, Verifier
from visiona.kit.metrics import grpcclient
from visiona.kit.metrics.sampler import JobKind, sample_jobs
from visiona.kit.metrics.serving import serve_metrics

SECRET = "s" * MIN_SECRET_BYTES
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


_sampled = TracerProvider().get_tracer("test")
_unsampled = TracerProvider(sampler=ALWAYS_OFF).get_tracer("test")
_probe = Histogram("visiona_test_probe_seconds", "A histogram of this test only.", ["case"])


def test_an_exemplar_is_the_sampled_span_s_trace_and_none_without_one() -> None:
    assert metrics.trace_exemplar() is None
    with _unsampled.start_as_current_span("dropped"):
        assert metrics.trace_exemplar() is None
    with _sampled.start_as_current_span("kept") as span:
        trace_id = format(span.get_span_context().trace_id, "032x")
        assert metrics.trace_exemplar() == {"trace_id": trace_id}


def test_exemplars_are_served_in_openmetrics_only() -> None:
    with _sampled.start_as_current_span("observed") as span:
        metrics.observe(_probe.labels("exemplar"), 0.042)
        trace_id = format(span.get_span_context().trace_id, "032x")
    port = free_port()
    stop = serve_metrics("127.0.0.1", port)
    assert stop is not None
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        open_metrics = httpx.get(url, headers={"Accept": OPENMETRICS}, timeout=10)
        classic = httpx.get(url, timeout=10)
    finally:
        stop()
    assert open_metrics.headers["content-type"].startswith("application/openmetrics-text")
    assert f'# {{trace_id="{trace_id}"}} 0.042' in open_metrics.text
    assert classic.headers["content-type"].startswith("text/plain")
    assert 'visiona_test_probe_seconds_count{case="exemplar"} 1.0' in classic.text
    assert "trace_id" not in classic.text


def test_port_zero_serves_nothing() -> None:
    assert serve_metrics("127.0.0.1", 0) is None


def _replicate(status: int) -> ReplicateError:
    return ReplicateError(status=status, detail="refused")


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (None, "ok"),
        (httpx.ReadTimeout("slow"), "timeout"),
        (TimeoutError(), "timeout"),
        (httpx.ConnectError("refused"), "unavailable"),
        (_replicate(503), "server_error"),
        (_replicate(404), "client_error"),
        (_replicate(408), "timeout"),
        (RuntimeError("no status at all"), "unavailable"),
    ],
)
def test_provider_outcome_follows_the_sdk_error(error: BaseException | None, outcome: str) -> None:
    assert metrics.provider_outcome(error) == outcome


def test_provider_outcome_looks_through_a_wrapping_error() -> None:
    try:
        try:
            raise _replicate(502)
        except ReplicateError as exc:
            raise ValueError("our error") from exc
    except ValueError as wrapped:
        assert metrics.provider_outcome(wrapped) == "server_error"


async def test_provider_call_counts_each_outcome_and_not_a_cancellation() -> None:
    ok = value("visiona_provider_requests_total", provider="p", operation="o", outcome="ok")
    bad = value(
        "visiona_provider_requests_total", provider="p", operation="o", outcome="client_error"
    )
    timed = value("visiona_provider_request_duration_seconds_count", provider="p", operation="o")
    with metrics.provider_call("p", "o"):
        pass
    with pytest.raises(ReplicateError), metrics.provider_call("p", "o"):
        raise _replicate(422)

    async def cancelled() -> None:
        with metrics.provider_call("p", "o"):
            await asyncio.sleep(10)

    task = asyncio.create_task(cancelled())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    labels = {"provider": "p", "operation": "o"}
    assert value("visiona_provider_requests_total", **labels, outcome="ok") == ok + 1
    assert value("visiona_provider_requests_total", **labels, outcome="client_error") == bad + 1
    assert value("visiona_provider_request_duration_seconds_count", **labels) == timed + 2


SERVICE = "visiona.test.v1.Metered"


async def _answer(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    if request == b"missing":
        raise NotFound("no such thing", code="thing_not_found")
    return request


@pytest.fixture
async def metered() -> AsyncIterator[Any]:
    server, _ = create_server(verifier=Verifier(SECRET))
    handler = grpc.method_handlers_generic_handler(
        SERVICE, {"Echo": grpc.unary_unary_rpc_method_handler(_answer)}
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpcclient.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield channel.unary_unary(f"/{SERVICE}/Echo")
    finally:
        await channel.close()
        await server.stop(None)


async def test_grpc_calls_are_counted_by_code_on_both_sides(metered: Any) -> None:
    labels = {"grpc_service": SERVICE, "grpc_method": "Echo"}
    before = {
        (side, code): value(f"grpc_{side}_handled_total", **labels, grpc_code=code)
        for side in ("server", "client")
        for code in ("OK", "NOT_FOUND", "UNAUTHENTICATED")
    }
    timed = value("grpc_server_handling_seconds_count", **labels)
    token = ((INTERNAL_TOKEN_KEY, Minter(SECRET, issuer="test").token("user_1")),)
    assert await metered(b"hello", metadata=token) == b"hello"
    with pytest.raises(grpc.aio.AioRpcError):
        await metered(b"missing", metadata=token)
    with pytest.raises(grpc.aio.AioRpcError):
        await metered(b"no token")
    for side in ("server", "client"):
        for code in ("OK", "NOT_FOUND", "UNAUTHENTICATED"):
            counted = value(f"grpc_{side}_handled_total", **labels, grpc_code=code)
            assert counted == before[(side, code)] + 1, (side, code)
    assert value("grpc_server_handling_seconds_count", **labels) == timed + 3


class _Rows:
    def __init__(self, rows: list[tuple[str, int, float]]) -> None:
        self.rows = rows

    def all(self) -> list[Any]:
        return [
            type("Row", (), {"state": state, "n": n, "oldest_s": oldest})()
            for state, n, oldest in self.rows
        ]


class _Db:
    """What sample_jobs uses of a Database: a system unit of work answering the one query."""

    def __init__(self, rows: list[tuple[str, int, float]]) -> None:
        self.rows = rows
        self.system: bool | None = None

    def uow(self, system: bool = False) -> Any:
        db = self
        db.system = system

        class Uow:
            session = db

            async def __aenter__(self) -> Any:
                return self

            async def __aexit__(self, *exc: object) -> None:
                return None

        return Uow()

    async def execute(self, query: Any) -> _Rows:
        return _Rows(self.rows)


KIND = JobKind("widgets", "widgets", ("new", "busy", "done"), frozenset({"done"}))


async def test_job_sampler_counts_every_state_and_ages_only_active_jobs() -> None:
    db = _Db([("busy", 2, 30.0), ("done", 5, 900.0)])
    await sample_jobs(db, KIND)  # type: ignore[arg-type]
    assert db.system is True  # the cross-user read is declared
    assert value("visiona_jobs", kind="widgets", state="new") == 0
    assert value("visiona_jobs", kind="widgets", state="busy") == 2
    assert value("visiona_jobs", kind="widgets", state="done") == 5
    # The finished job is older, but only unfinished ones are waiting on something.
    assert value("visiona_job_oldest_active_age_seconds", kind="widgets") == 30.0
    await sample_jobs(_Db([("done", 6, 950.0)]), KIND)  # type: ignore[arg-type]
    assert value("visiona_jobs", kind="widgets", state="busy") == 0
    assert value("visiona_job_oldest_active_age_seconds", kind="widgets") == 0


def test_job_kind_query_groups_the_live_rows_by_state() -> None:
    kind = JobKind("training", "models", ("a",), frozenset(), live="deleted_at IS NULL")
    sql = str(kind.query())
    assert 'FROM "models" WHERE deleted_at IS NULL GROUP BY status' in sql
    assert "min(created_at)" in sql
