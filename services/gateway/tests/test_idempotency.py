"""Idempotency keys in Postgres (idempotency_* of migration 0002), and the edge middlewares
when the database is out of reach: rate limits fail open, idempotency fails closed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
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
from visiona.gateway.idempotency import (
    IdempotencyMiddleware,
    IdempotencyStore,
    fingerprint,
    is_transient,
    sweep,
)
from visiona.gateway.pseudonyms import Pseudonyms
from visiona.gateway.ratelimit import AdmissionMiddleware
from visiona.kit.auth import TokenVerifier
from visiona.kit.db import Database

FP_A = fingerprint("POST", "/v1/a", b"", b'{"n":1}')
FP_B = fingerprint("POST", "/v1/a", b"", b'{"n":2}')


@pytest.fixture
async def store(gateway_db: SchemaDb) -> AsyncIterator[IdempotencyStore]:
    db = gateway_db.db()
    try:
        yield IdempotencyStore(db, lease_s=60, ttl_s=3600)
    finally:
        await db.dispose()


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
    db = gateway_db.db()
    try:
        short = IdempotencyStore(db, lease_s=0.001, ttl_s=3600)
        alice, first, second = user(), uuid.uuid4(), uuid.uuid4()
        await short.claim(alice, "k", FP_A, first)
        # A different request does not take a lapsed key over; the same request does.
        assert (await short.claim(alice, "k", FP_B, uuid.uuid4())).same_request is False
        assert (await short.claim(alice, "k", FP_A, second)).outcome == "claimed"
        assert await short.finish(alice, "k", first, 201, [], b"late") is False
        assert await short.finish(alice, "k", second, 201, [], b"mine") is True
        assert (await short.claim(alice, "k", FP_A, uuid.uuid4())).body == b"mine"
    finally:
        await db.dispose()


async def test_an_expired_key_is_as_good_as_new_and_the_sweep_removes_only_those(
    gateway_db: SchemaDb,
) -> None:
    db = gateway_db.db()
    try:
        expiring = IdempotencyStore(db, lease_s=60, ttl_s=0.001)
        lasting = IdempotencyStore(db, lease_s=60, ttl_s=3600)
        alice, attempt = user(), uuid.uuid4()
        await expiring.claim(alice, "old", FP_A, attempt)
        await expiring.finish(alice, "old", attempt, 201, [], b"then")
        assert (await expiring.claim(alice, "old", FP_B, uuid.uuid4())).outcome == "claimed"
        await expiring.claim(alice, "gone", FP_A, uuid.uuid4())
        await lasting.claim(alice, "live", FP_A, uuid.uuid4())
        assert await sweep(db) >= 2
    finally:
        await db.dispose()
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


# --- the middlewares without a database ----------------------------------------------------


class Edge:
    def __init__(self, client: httpx.AsyncClient, issuer: DevIssuer, calls: list[str]) -> None:
        self.client, self.issuer, self.calls = client, issuer, calls

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.issuer.issue(name)}"}


@pytest.fixture
async def unreachable(tmp_path: Path) -> AsyncIterator[Edge]:
    """The admission and idempotency middlewares over a route that counts its calls, with a
    database nobody listens on."""
    issuer = load_or_create_key(tmp_path, issuer="http://127.0.0.1:9")
    calls: list[str] = []

    async def thing(request: Request) -> JSONResponse:
        calls.append(request.method)
        return JSONResponse({"ok": True}, status_code=201)

    settings = GatewaySettings(edge_check_timeout_s=5.0)
    app = Starlette(routes=[Route("/v1/thing", thing, methods=["GET", "POST"])])
    app.add_middleware(IdempotencyMiddleware, settings=settings)
    app.add_middleware(AdmissionMiddleware, settings=settings)
    db = Database("postgresql+psycopg://nobody@127.0.0.1:1/none", "gateway", pool_size=1)
    app.state.backplane = SimpleNamespace(db=db)
    app.state.pseudonyms = Pseudonyms(b"k" * 32)
    app.state.verifier = TokenVerifier(
        issuer=issuer.issuer,
        authorized_parties=["http://localhost:3000"],
        pem_public_key=issuer.public_pem(),
    )
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://edge") as client:
            yield Edge(client, issuer, calls)
    finally:
        await db.dispose()


async def test_rate_limits_fail_open_when_the_database_is_out_of_reach(
    unreachable: Edge,
) -> None:
    response = await unreachable.client.post("/v1/thing", headers=unreachable.auth("alice"))
    assert response.status_code == 201
    assert "ratelimit-limit" not in response.headers
    assert unreachable.calls == ["POST"]


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
