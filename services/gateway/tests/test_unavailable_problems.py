"""An unavailable dependency is 503 with Retry-After at the edge, never 500: a back service's
UNAVAILABLE, and the gateway's own database failing a route. The whole app in process (its
middlewares and handlers) over routes that fail as the real ones do, with a database nobody
listens on; no server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace

import grpc
import httpx
import pytest
from fastapi import FastAPI

from visiona.gateway.app import create_app
from visiona.gateway.config import GatewaySettings
from visiona.gateway.edge.pseudonyms import Pseudonyms
from visiona.kit.db import Database
from visiona.kit.grpcserver import ERROR_CODE_KEY

UNREACHABLE_DB = "postgresql+psycopg://nobody@127.0.0.1:1/none"


def rpc_error(code: grpc.StatusCode, error_code: str | None) -> grpc.aio.AioRpcError:
    trailing = grpc.aio.Metadata(*([(ERROR_CODE_KEY, error_code)] if error_code else []))
    return grpc.aio.AioRpcError(
        code, grpc.aio.Metadata(), trailing, "the service cannot reach what it depends on"
    )


@pytest.fixture
async def edge() -> AsyncIterator[httpx.AsyncClient]:
    settings = GatewaySettings(edge_check_timeout_s=5.0)
    app: FastAPI = create_app(settings)
    db = Database(UNREACHABLE_DB, "gateway", pool_size=1)
    # What the lifespan would set, minus everything that needs a server.
    app.state.backplane = SimpleNamespace(db=db)
    app.state.pseudonyms = Pseudonyms(b"k" * 32)

    async def own_database() -> dict[str, str]:
        await db.ping()
        return {}

    async def service_lost_its_database() -> dict[str, str]:
        raise rpc_error(grpc.StatusCode.UNAVAILABLE, "dependency_unavailable")

    async def service_unreachable() -> dict[str, str]:
        raise rpc_error(grpc.StatusCode.UNAVAILABLE, None)

    async def gave_up_on_own_database() -> dict[str, str]:
        try:
            await db.ping()
        except Exception as exc:
            raise RuntimeError("gave up") from exc
        return {}

    async def bug() -> dict[str, str]:
        raise KeyError("bug")

    async def bug_of_a_dependency_class() -> dict[str, str]:
        # OSError, like a refused connection, but a local file: still a bug.
        raise FileNotFoundError(2, "no such file")

    for path, route in {
        "/v1/probe/own-database": own_database,
        "/v1/probe/service-lost-its-database": service_lost_its_database,
        "/v1/probe/service-unreachable": service_unreachable,
        "/v1/probe/gave-up": gave_up_on_own_database,
        "/v1/probe/bug": bug,
        "/v1/probe/file-bug": bug_of_a_dependency_class,
    }.items():
        app.add_api_route(path, route, methods=["GET"])
    # An unhandled error is also raised to the server (to log it); answered all the same.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://edge") as client:
            yield client
    finally:
        await db.dispose()


def assert_retry_later(response: httpx.Response, code: str) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert int(response.headers.get("retry-after", "0")) >= 1  # whole seconds to wait
    assert response.json()["code"] == code
    assert len(response.headers["x-request-id"]) == 32


async def test_a_service_that_lost_its_database_is_503_dependency_unavailable(
    edge: httpx.AsyncClient,
) -> None:
    response = await edge.get("/v1/probe/service-lost-its-database")
    assert_retry_later(response, "dependency_unavailable")
    # The service's own words for people (the kit's grpcserver words them).
    assert response.json()["detail"] == "the service cannot reach what it depends on"


async def test_a_service_that_cannot_be_reached_is_503_with_retry_after(
    edge: httpx.AsyncClient,
) -> None:
    response = await edge.get("/v1/probe/service-unreachable")
    assert_retry_later(response, "service_unavailable")


@pytest.mark.parametrize("path", ["/v1/probe/own-database", "/v1/probe/gave-up"])
async def test_the_gateways_own_database_out_of_reach_is_503_not_500(
    edge: httpx.AsyncClient, path: str
) -> None:
    response = await edge.get(path)
    assert_retry_later(response, "dependency_unavailable")
    assert "127.0.0.1" not in response.text  # nothing of the connection leaks


@pytest.mark.parametrize("path", ["/v1/probe/bug", "/v1/probe/file-bug"])
async def test_a_bug_is_still_500(edge: httpx.AsyncClient, path: str) -> None:
    response = await edge.get(path)
    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    assert "retry-after" not in response.headers
