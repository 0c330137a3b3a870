"""A size limit that was passed is said in the problem: in its ``detail`` and in the fields
``max_bytes`` and ``max_size``, whether a back service found it (gRPC trailing metadata) or the
gateway itself (its body limit). The whole app in process; no server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import httpx
import pytest
from fastapi import FastAPI

from visiona.gateway.app import create_app
from visiona.gateway.config import GatewaySettings
from visiona.gateway.edge.pseudonyms import Pseudonyms
from visiona.kit.grpcserver import ERROR_CODE_KEY, ERROR_MAX_BYTES_KEY

LIMIT = 20 * 1024 * 1024


@pytest.fixture
async def edge() -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(GatewaySettings(max_body_bytes=1024))
    app.state.pseudonyms = Pseudonyms(b"k" * 32)  # what the lifespan would set

    async def photo_too_large() -> dict[str, str]:
        trailing = grpc.aio.Metadata(
            (ERROR_CODE_KEY, "photo_too_large"), (ERROR_MAX_BYTES_KEY, str(LIMIT))
        )
        raise grpc.aio.AioRpcError(
            grpc.StatusCode.INVALID_ARGUMENT,
            grpc.aio.Metadata(),
            trailing,
            "the upload is 25.3 MiB (26528972 bytes); photos are at most 20 MiB (20971520 bytes)",
        )

    app.add_api_route("/v1/probe/photo", photo_too_large, methods=["POST"])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://edge") as client:
        yield client


async def test_a_service_size_error_says_the_limit_in_bytes_and_for_people(
    edge: httpx.AsyncClient,
) -> None:
    response = await edge.post("/v1/probe/photo")
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "photo_too_large"
    assert (body["max_bytes"], body["max_size"]) == (LIMIT, "20 MiB")
    assert "20 MiB (20971520 bytes)" in body["detail"]


async def test_a_body_over_the_gateways_limit_says_the_limit(edge: httpx.AsyncClient) -> None:
    response = await edge.post(
        "/v1/probe/photo", content=b"{}" + b" " * 2000, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413, response.text
    body = response.json()
    assert body["code"] == "body_too_large"
    assert (body["max_bytes"], body["max_size"]) == (1024, "1 KiB")
    assert "1 KiB (1024 bytes)" in body["detail"]


async def test_other_problems_carry_no_limit(edge: httpx.AsyncClient) -> None:
    body = (await edge.get("/v1/no-such-route")).json()
    assert "max_bytes" not in body and "max_size" not in body
