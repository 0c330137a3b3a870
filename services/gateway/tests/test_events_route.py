"""GET /v1/events in process (uvicorn, no broker): what a stream leaves behind when it ends."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from tests.support.waiting import eventually
from visiona.emulators.clerk import DevIssuer, load_or_create_key
from visiona.emulators.ports import free_port
from visiona.gateway.app import create_app
from visiona.gateway.config import GatewaySettings
from visiona.gateway.live.feed import EventHub


@dataclass
class Gateway:
    url: str
    server: uvicorn.Server
    hub: EventHub
    issuer: DevIssuer

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.issuer.issue(user)}"}


@pytest.fixture
async def gateway(tmp_path: Path, gateway_backing: dict[str, Any]) -> AsyncIterator[Gateway]:
    issuer = load_or_create_key(tmp_path, issuer="http://127.0.0.1:9")
    port = free_port()
    settings = GatewaySettings(
        port=port,
        clerk_issuer=issuer.issuer,
        clerk_jwt_key=issuer.public_pem(),
        # The streams are fed from the hub directly; the broker carries nothing here.
        **gateway_backing,
        amqp_reconnect_s=5.0,
        sse_heartbeat_s=0.2,
        sse_client_queue=2,
        log_format="console",
    )
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not serving.done(), serving
            await asyncio.sleep(0.02)
        yield Gateway(f"http://127.0.0.1:{port}", server, app.state.events.hub, issuer)
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 10)


@contextlib.asynccontextmanager
async def stream(
    gateway: Gateway, user: str, headers: dict[str, str] | None = None, read_timeout_s: float = 5
) -> AsyncIterator[tuple[httpx.Response, AsyncIterator[str]]]:
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(5.0, read=read_timeout_s)) as client,
        client.stream(
            "GET", f"{gateway.url}/v1/events", headers=gateway.auth(user) | (headers or {})
        ) as response,
    ):
        assert response.status_code == 200
        yield response, response.aiter_lines()


async def test_a_closed_connection_leaves_no_stream_behind(gateway: Gateway) -> None:
    async with stream(gateway, "leaver") as (_, lines):
        assert (await anext(lines)).startswith("id: ")
        assert gateway.hub.open_streams == 1
    await eventually("the stream to be dropped", lambda: gateway.hub.open_streams == 0)


async def test_a_client_that_falls_behind_is_disconnected_and_resumes_by_id(
    gateway: Gateway,
) -> None:
    user_id = "user_laggard"
    async with stream(gateway, "laggard") as (_, lines):
        opening = await anext(lines)
        assert opening.startswith("id: ")
        # Three at once into a queue of two: the stream is dropped before it sends them.
        published = [
            gateway.hub.publish(user_id, "training.model.ready.v1", uuid.uuid4().hex, "{}")
            for _ in range(3)
        ]
        rest = [line async for line in lines]  # the server ends the response
    assert not any(line.startswith("data:") for line in rest)
    assert gateway.hub.open_streams == 0

    resumed_from = opening.removeprefix("id: ")
    async with stream(gateway, "laggard", {"Last-Event-ID": resumed_from}) as (_, lines):
        ids: list[str] = []
        while len(ids) < 4:
            line = await asyncio.wait_for(anext(lines), 5)
            if line.startswith("id: "):
                ids.append(line.removeprefix("id: "))
    # It stands where it was, then gets all three from the buffer.
    assert ids == [resumed_from, *(e.id for e in published if e is not None)]


async def test_shutting_down_ends_open_streams_at_once(gateway: Gateway) -> None:
    # Without the hub closing its streams, uvicorn's graceful shutdown waits for them with no
    # end (the heartbeats go on): the stream would never end. A minute bounds that hang.
    async def the_rest(lines: AsyncIterator[str]) -> list[str]:
        return [line async for line in lines]  # a complete response: no protocol error

    async with stream(gateway, "stayer", read_timeout_s=60) as (_, lines):
        assert (await anext(lines)).startswith("id: ")
        gateway.server.should_exit = True
        rest = await asyncio.wait_for(the_rest(lines), 60)
    assert not any(line.startswith("data:") for line in rest)
    await eventually("the stream to be dropped", lambda: gateway.hub.open_streams == 0)
