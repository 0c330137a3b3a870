"""Idempotency keys in Postgres (idempotency_* of migrations 0002 and 0003), the middleware
handing end-to-end routes their scoped key (ADR 0009), and the edge middlewares when the
database is out of reach: rate limits fail open, idempotency fails closed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.schemas import SchemaDb
from visiona.emulators.clerk import DevIssuer, load_or_create_key
from visiona.gateway.config import GatewaySettings
from visiona.gateway.edge.idempotency import (
    END_TO_END,
    IdempotencyMiddleware,
    fingerprint,
    is_transient,
    scoped_key,
    scoped_key_of,
)
from visiona.gateway.edge.pseudonyms import Pseudonyms
from visiona.gateway.edge.ratelimit import AdmissionMiddleware
from visiona.gateway.repository.idempotency_key import IdempotencyStore, sweep
from visiona.kit.auth import TokenVerifier
from visiona.kit.db import Database

FP_A = fingerprint("POST", "/v1/a", b"", b'{"n":1}')
FP_B = fingerprint("POST", "/v1/a", b"", b'{"n":2}')


@pytest.fixture
async def store(gateway_db: SchemaDb) -> AsyncIterator[IdempotencyStore]:
    async with gateway_db.opened() as db:
        yield IdempotencyStore(db, lease_s=60, ttl_s=3600)


def user() -> str:
    return f"user_{uuid.uuid4().hex[:10]}"


async def test_the_first_claims_a_twin_waits_and_another_request_is_told_apart(
    store: IdempotencyStore,
) -> None:
    alice, attempt = user(), uuid.uuid4()
    assert (await store.claim(alice, "k1", FP_A, attempt)).outcome == "claimed"
    running = await store.claim(alice, "k1", FP_A, uuid.uuid4())
    assert (running.outcome, running.same_request) == ("in_progress", True)
    other = await store.claim(alice, "k1", FP_B, uuid.uuid4())
    assert other.same_request is False

    headers = [(b"content-type", b"application/json"), (b"content-length", b"7")]
    assert await store.finish(alice, "k1", attempt, 201, headers, b'{"x":1}')
    done = await store.claim(alice, "k1", FP_A, uuid.uuid4())
    assert (done.outcome, done.status, done.headers, done.body) == (
        "done",
        201,
        headers,
        b'{"x":1}',
    )
    assert (await store.claim(alice, "k1", FP_B, uuid.uuid4())).same_request is False


async def test_keys_are_per_user(store: IdempotencyStore, gateway_db: SchemaDb) -> None:
    alice, bob = user(), user()
    attempt = uuid.uuid4()
    await store.claim(alice, "shared", FP_A, attempt)
    await store.finish(alice, "shared", attempt, 200, [], b"alice's")
    assert (await store.claim(bob, "shared", FP_B, uuid.uuid4())).outcome == "claimed"
    # The app role sees no key at all without acting as their user (row-level security).
    assert gateway_db.sql("SELECT count(*) FROM idempotency_keys", as_role="app") == [(0,)]


async def test_a_released_key_runs_again_even_with_another_body(store: IdempotencyStore) -> None:
    alice, attempt = user(), uuid.uuid4()
    await store.claim(alice, "k", FP_A, attempt)
    await store.release(alice, "k", attempt)
    assert (await store.claim(alice, "k", FP_B, uuid.uuid4())).outcome == "claimed"


async def test_an_abandoned_attempt_is_taken_over_after_its_lease_and_cannot_store(
    gateway_db: SchemaDb,
) -> None:
    async with gateway_db.opened() as db:
        short = IdempotencyStore(db, lease_s=0.001, ttl_s=3600)
        alice, first, second = user(), uuid.uuid4(), uuid.uuid4()
        await short.claim(alice, "k", FP_A, first)
        # A different request does not take a lapsed key over; the same request does.
        assert (await short.claim(alice, "k", FP_B, uuid.uuid4())).same_request is False
        assert (await short.claim(alice, "k", FP_A, second)).outcome == "claimed"
        assert await short.finish(alice, "k", first, 201, [], b"late") is False
        assert await short.finish(alice, "k", second, 201, [], b"mine") is True
        assert (await short.claim(alice, "k", FP_A, uuid.uuid4())).body == b"mine"


async def test_a_twin_may_take_a_live_claim_over_and_then_the_first_cannot_store(
    store: IdempotencyStore,
) -> None:
    alice, first, second = user(), uuid.uuid4(), uuid.uuid4()
    await store.claim(alice, "k", FP_A, first)
    # Another request is never taken over; the same one is, at once, when asked to.
    assert (await store.claim(alice, "k", FP_B, uuid.uuid4(), take_over=True)).same_request is False
    assert (await store.claim(alice, "k", FP_A, second, take_over=True)).outcome == "claimed"
    await store.release(alice, "k", first)  # the first attempt's failure gives back nothing
    assert await store.finish(alice, "k", first, 201, [], b"first") is False
    assert await store.finish(alice, "k", second, 201, [], b"second") is True
    done = await store.claim(alice, "k", FP_A, uuid.uuid4(), take_over=True)
    assert (done.outcome, done.body) == ("done", b"second")


async def test_an_expired_key_is_as_good_as_new_and_the_sweep_removes_only_those(
    gateway_db: SchemaDb,
) -> None:
    async with gateway_db.opened() as db:
        expiring = IdempotencyStore(db, lease_s=60, ttl_s=0.001)
        lasting = IdempotencyStore(db, lease_s=60, ttl_s=3600)
        alice, attempt = user(), uuid.uuid4()
        await expiring.claim(alice, "old", FP_A, attempt)
        await expiring.finish(alice, "old", attempt, 201, [], b"then")
        assert (await expiring.claim(alice, "old", FP_B, uuid.uuid4())).outcome == "claimed"
        await expiring.claim(alice, "gone", FP_A, uuid.uuid4())
        await lasting.claim(alice, "live", FP_A, uuid.uuid4())
        assert await sweep(db) >= 2
    left = gateway_db.sql("SELECT key FROM idempotency_keys WHERE user_id = %s", alice)
    assert left == [("live",)]


def test_the_fingerprint_separates_every_part_and_transient_answers_are_not_kept() -> None:
    assert fingerprint("POST", "/v1/a", b"", b"bc") != fingerprint("POST", "/v1/ab", b"", b"c")
    assert fingerprint("POST", "/v1/a", b"x=1", b"") != fingerprint("POST", "/v1/a", b"", b"x=1")
    assert fingerprint("POST", "/v1/a", b"", b"{}") == fingerprint("POST", "/v1/a", b"", b"{}")
    assert [is_transient(s) for s in (200, 201, 404, 409, 422, 408, 429, 500, 503)] == [
        *[False] * 5,
        *[True] * 4,
    ]


def test_a_scoped_key_belongs_to_one_user_one_route_and_one_key() -> None:
    key = scoped_key("user_a", "POST", "/v1/generations", "k")
    assert len(key) == 64 and key == scoped_key("user_a", "POST", "/v1/generations", "k")
    assert key != scoped_key("user_b", "POST", "/v1/generations", "k")
    assert key != scoped_key("user_a", "POST", "/v1/models", "k")
    assert key != scoped_key("user_a", "POST", "/v1/generations", "k2")
    assert scoped_key("user_a", "POST", "/v1/ab", "c") != scoped_key(
        "user_a", "POST", "/v1/a", "bc"
    )


# --- the middleware on a real database --------------------------------------------------------


class Edge:
    def __init__(self, client: httpx.AsyncClient, issuer: DevIssuer, calls: list[str]) -> None:
        self.client, self.issuer, self.calls = client, issuer, calls

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.issuer.issue(name)}"}


def edge_app(tmp_path: Path, db: Database, calls: list[str]) -> tuple[Starlette, DevIssuer]:
    """The admission and idempotency middlewares over two routes that note each call and the
    scoped key it was handed: one end to end (``/v1/generations``), one not (``/v1/thing``)."""
    issuer = load_or_create_key(tmp_path, issuer="http://127.0.0.1:9")

    async def route(request: Request) -> JSONResponse:
        calls.append(f"{request.url.path} {scoped_key_of(request)}")
        return JSONResponse({"n": len(calls)}, status_code=201)

    settings = GatewaySettings(edge_check_timeout_s=5.0)
    app = Starlette(
        routes=[
            Route("/v1/generations", route, methods=["POST"]),
            Route("/v1/thing", route, methods=["GET", "POST"]),
        ]
    )
    app.add_middleware(IdempotencyMiddleware, settings=settings)
    app.add_middleware(AdmissionMiddleware, settings=settings)
    app.state.backplane = SimpleNamespace(db=db)
    app.state.pseudonyms = Pseudonyms(b"k" * 32)
    app.state.verifier = TokenVerifier(
        issuer=issuer.issuer,
        authorized_parties=["http://localhost:3000"],
        pem_public_key=issuer.public_pem(),
    )
    return app, issuer


@asynccontextmanager
async def serving(tmp_path: Path, db: Database) -> AsyncIterator[Edge]:
    """The edge over ``db``, and a client of it; ``db`` is disposed of afterwards."""
    calls: list[str] = []
    app, issuer = edge_app(tmp_path, db, calls)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://edge") as client:
            yield Edge(client, issuer, calls)
    finally:
        await db.dispose()


@pytest.fixture
async def edge(tmp_path: Path, gateway_db: SchemaDb) -> AsyncIterator[Edge]:
    async with serving(tmp_path, gateway_db.db()) as served:
        yield served


async def test_only_end_to_end_routes_are_handed_the_scoped_key(edge: Edge) -> None:
    assert "/v1/generations" in END_TO_END and "/v1/thing" not in END_TO_END
    name, key = user(), f"k-{uuid.uuid4()}"  # user() is already the token's subject
    for path in ("/v1/generations", "/v1/thing"):
        headers = {**edge.auth(name), "Idempotency-Key": f"{key}{path}"}
        assert (await edge.client.post(path, headers=headers, json={})).status_code == 201
    assert (
        await edge.client.post("/v1/thing", headers=edge.auth(name), json={})
    ).status_code == 201
    assert edge.calls == [
        f"/v1/generations {scoped_key(name, 'POST', '/v1/generations', f'{key}/v1/generations')}",
        "/v1/thing None",
        "/v1/thing None",
    ]


async def test_a_key_left_in_progress_blocks_only_routes_without_service_dedupe(
    edge: Edge, gateway_db: SchemaDb
) -> None:
    """As a gateway that died mid-request leaves it: in progress, its lease running."""
    name, key, body = user(), f"k-{uuid.uuid4()}", b"{}"
    store = IdempotencyStore(gateway_db.db(), lease_s=90, ttl_s=3600)
    answers = {}
    try:
        for path in ("/v1/generations", "/v1/thing"):
            headers = {**edge.auth(name), "Idempotency-Key": key + path}
            fp = fingerprint("POST", path, b"", body)
            await store.claim(name, key + path, fp, uuid.uuid4())
            answers[path] = await edge.client.post(path, headers=headers, content=body)
            if path in END_TO_END:
                # Passed on to the route (whose service answers the first result), recorded.
                assert answers[path].status_code == 201, answers[path].text
                replay = await edge.client.post(path, headers=headers, content=body)
                assert replay.headers["idempotent-replayed"] == "true"
                assert replay.content == answers[path].content
    finally:
        await store.db.dispose()
    waiting = answers["/v1/thing"]
    assert (waiting.status_code, waiting.json()["code"]) == (409, "idempotency_key_in_progress")
    assert [c.split()[0] for c in edge.calls] == ["/v1/generations"]


# --- the middlewares without a database ----------------------------------------------------


@pytest.fixture
async def unreachable(tmp_path: Path) -> AsyncIterator[Edge]:
    """The edge with a database nobody listens on."""
    db = Database("postgresql+psycopg://nobody@127.0.0.1:1/none", "gateway", pool_size=1)
    async with serving(tmp_path, db) as served:
        yield served


async def test_rate_limits_fail_open_when_the_database_is_out_of_reach(
    unreachable: Edge,
) -> None:
    response = await unreachable.client.post("/v1/thing", headers=unreachable.auth("alice"))
    assert response.status_code == 201
    assert "ratelimit-limit" not in response.headers
    assert unreachable.calls == ["/v1/thing None"]


async def test_an_idempotency_key_fails_closed_when_the_database_is_out_of_reach(
    unreachable: Edge,
) -> None:
    response = await unreachable.client.post(
        "/v1/thing", headers={**unreachable.auth("alice"), "Idempotency-Key": "k-1"}
    )
    assert response.status_code == 503
    assert response.json()["code"] == "idempotency_unavailable"
    assert response.headers["retry-after"] == "1"
    assert unreachable.calls == []


async def test_a_malformed_key_is_400_before_anything_runs(unreachable: Edge) -> None:
    for key in ("x" * 256, "tab\there", "caf\xe9"):
        response = await unreachable.client.post(
            "/v1/thing",
            headers=[
                (b"authorization", unreachable.auth("alice")["Authorization"].encode()),
                (b"idempotency-key", key.encode("latin-1")),
            ],
        )
        assert response.status_code == 400, key
        assert response.json()["code"] == "invalid_idempotency_key"
    two = await unreachable.client.post(
        "/v1/thing", headers=[("Idempotency-Key", "a"), ("Idempotency-Key", "b")]
    )
    assert two.status_code == 400
    assert unreachable.calls == []
