"""GET /v1/events end to end: the gateway's live stream of a user's own events, fed by the
run's RabbitMQ exchange (events published with the kit's bus, or raised by a real purchase)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.e2e.test_billing import STARTER, buy_starter, publish
from tests.support.broker_proxy import BrokerProxy
from tests.support.stack import RunningStack, extra_gateway
from visiona.kit.events import CreditsChangedV1, Event, ModelReadyV1

READ_S = 10.0


# --- reading a stream ---------------------------------------------------------------------


@dataclass
class Message:
    """One SSE message as a client parses it (a comment line is a message of its own here)."""

    id: str | None = None
    event: str | None = None
    data: str | None = None
    retry: str | None = None
    comment: str | None = None

    def json(self) -> dict[str, Any]:
        assert self.data is not None
        return dict(json.loads(self.data))


class EventStream:
    """An open ``/v1/events`` response, parsed in the background into messages."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.messages: asyncio.Queue[Message] = asyncio.Queue()
        self.opening = Message()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        fields: dict[str, str] = {}
        async for line in self.response.aiter_lines():
            if line == "":
                if fields:
                    self.messages.put_nowait(Message(**fields))
                    fields = {}
                continue
            name, _, value = line.partition(":")
            fields["comment" if name == "" else name] = value.removeprefix(" ")

    async def next(self, timeout_s: float = READ_S) -> Message:
        return await asyncio.wait_for(self.messages.get(), timeout_s)

    async def next_event(self, timeout_s: float = READ_S) -> Message:
        """The next message with data (heartbeats and the opening message skipped)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            message = await self.next(max(0.01, deadline - loop.time()))
            if message.data is not None:
                return message

    async def events(self, n: int, timeout_s: float = READ_S) -> list[Message]:
        return [await self.next_event(timeout_s) for _ in range(n)]

    async def close(self) -> None:
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)


@contextlib.asynccontextmanager
async def open_stream(
    url: str, headers: dict[str, str], **params: str
) -> AsyncIterator[EventStream]:
    timeout = httpx.Timeout(READ_S, read=60.0)
    async with (
        httpx.AsyncClient(timeout=timeout) as client,
        client.stream("GET", f"{url}/v1/events", headers=headers, params=params) as response,
    ):
        assert response.status_code == 200, await response.aread()
        stream = EventStream(response)
        try:
            stream.opening = await stream.next()
            yield stream
        finally:
            await stream.close()


def seq(message_id: str | None) -> tuple[str, int]:
    assert message_id is not None
    instance, _, number = message_id.rpartition("-")
    return instance, int(number)


# --- events and gateways ------------------------------------------------------------------


def credits(user_id: str, balance: int) -> CreditsChangedV1:
    return CreditsChangedV1(
        user_id=user_id, balance=balance, held=0, available=balance, cause="test"
    )


def ready(user_id: str) -> ModelReadyV1:
    return ModelReadyV1(
        user_id=user_id, model_id=uuid.uuid4(), training_id=uuid.uuid4(), version="v1"
    )


def new_user(name: str) -> tuple[str, str]:
    """A user name for tokens, and the user id events carry."""
    user = f"{name}-{uuid.uuid4().hex[:6]}"
    return user, f"user_{user}"


async def wait_live(stack: RunningStack, url: str, timeout_s: float = 30.0) -> None:
    """Publish probes until the gateway at ``url`` passes one on: its feed is consuming."""
    user, user_id = new_user("probe")
    async with open_stream(url, stack.auth(user)) as stream:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            await publish(stack, credits(user_id, 0))
            with contextlib.suppress(TimeoutError):
                await stream.next_event(0.5)
                return
        raise AssertionError(f"the gateway at {url} passed no event on within {timeout_s} s")


@pytest.fixture(scope="module")
def quick_gateway(stack: RunningStack) -> Iterator[str]:
    """A second instance with a heartbeat every 0.3 s."""
    with extra_gateway(stack, GATEWAY_SSE_HEARTBEAT_S="0.3") as url:
        yield url


@pytest.fixture(scope="module")
async def live(stack: RunningStack) -> str:
    """The stack's gateway, once its feed consumes."""
    await wait_live(stack, stack.url)
    return stack.url


# --- the stream ---------------------------------------------------------------------------


async def test_each_user_receives_exactly_their_own_events_in_order(
    stack: RunningStack, live: str
) -> None:
    alice, alice_id = new_user("alice")
    bob, bob_id = new_user("bob")
    async with (
        open_stream(live, stack.auth(alice)) as alice_stream,
        open_stream(live, stack.auth(bob)) as bob_stream,
    ):
        published: list[Event] = [
            credits(alice_id, 1),
            ready(bob_id),
            credits(alice_id, 2),
            ready(alice_id),
            credits(bob_id, 5),
        ]
        await publish(stack, *published)
        for stream, user_id in ((alice_stream, alice_id), (bob_stream, bob_id)):
            own = [e for e in published if e.user_id == user_id]
            got = await stream.events(len(own))
            assert [(m.event, m.json()["event_id"]) for m in got] == [
                (e.routing_key, str(e.event_id)) for e in own
            ]
            assert all(m.json()["user_id"] == user_id for m in got)
            # Ids: this instance's, counting up from where the stream opened.
            instance, opened_at = seq(stream.opening.id)
            numbers = [seq(m.id) for m in got]
            assert {i for i, _ in numbers} == {instance}
            assert opened_at < numbers[0][1] < numbers[-1][1]
            assert [n for _, n in numbers] == sorted(n for _, n in numbers)
        # Nothing else was on either stream: the next event is the next one published.
        markers = {alice_id: credits(alice_id, 9), bob_id: credits(bob_id, 9)}
        await publish(stack, *markers.values())
        for stream, user_id in ((alice_stream, alice_id), (bob_stream, bob_id)):
            next_one = await stream.next_event()
            assert next_one.json()["event_id"] == str(markers[user_id].event_id)


async def test_the_stream_is_an_unbuffered_event_stream_with_a_retry_hint(
    stack: RunningStack, live: str
) -> None:
    user, _ = new_user("headers")
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(READ_S)) as client,
        client.stream("GET", f"{live}/v1/events", headers=stack.auth(user)) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache, no-transform"
        assert response.headers["x-accel-buffering"] == "no"
        stream = EventStream(response)
        try:
            opening = await stream.next()
        finally:
            await stream.close()
    assert opening.retry == "3000" and opening.data is None
    assert seq(opening.id)[1] >= 0


async def test_heartbeats_arrive_while_nothing_happens(
    stack: RunningStack, quick_gateway: str
) -> None:
    user, _ = new_user("quiet")
    async with open_stream(quick_gateway, stack.auth(user)) as stream:
        pings = [await stream.next(2.0) for _ in range(3)]
    assert [m.comment for m in pings] == ["ping"] * 3


async def test_last_event_id_resumes_with_only_the_missed_events(
    stack: RunningStack, live: str
) -> None:
    user, user_id = new_user("resumer")
    auth = stack.auth(user)
    events = [credits(user_id, n) for n in range(1, 6)]
    async with open_stream(live, auth) as watcher:
        async with open_stream(live, auth) as first:
            await publish(stack, *events[:2])
            seen = await first.events(2)
        # Disconnected: two more happen (the watcher shows the gateway has them).
        await publish(stack, *events[2:4])
        assert len(await watcher.events(4)) == 4

        async with open_stream(live, auth | {"Last-Event-ID": str(seen[-1].id)}) as resumed:
            assert resumed.opening.id == seen[-1].id
            replayed = await resumed.events(2)
            assert [m.json()["balance"] for m in replayed] == [3, 4]
            await publish(stack, events[4])
            assert (await resumed.next_event()).json()["balance"] == 5

        # Without EventSource: the query parameter, which the header overrides.
        async with open_stream(live, auth, last_event_id=str(seen[0].id)) as by_query:
            assert [m.json()["balance"] for m in await by_query.events(4)] == [2, 3, 4, 5]
        header = auth | {"Last-Event-ID": str(replayed[0].id)}
        async with open_stream(live, header, last_event_id=str(seen[0].id)) as both:
            assert [m.json()["balance"] for m in await both.events(2)] == [4, 5]


async def test_an_id_from_another_instance_starts_fresh_with_a_resync(
    stack: RunningStack, live: str, quick_gateway: str
) -> None:
    user, user_id = new_user("roamer")
    auth = stack.auth(user)
    async with open_stream(live, auth) as first:
        await publish(stack, credits(user_id, 1))
        elsewhere = (await first.next_event()).id
    assert elsewhere is not None
    async with open_stream(quick_gateway, auth | {"Last-Event-ID": elsewhere}) as other:
        assert seq(other.opening.id)[0] != seq(elsewhere)[0]
        resync = await other.next_event()
        assert (resync.event, resync.json(), resync.id) == (
            "resync",
            {"reason": "unknown_last_event_id"},
            None,
        )


async def test_the_stream_needs_a_session_token(stack: RunningStack) -> None:
    async with httpx.AsyncClient(timeout=READ_S) as client:
        missing = await client.get(f"{stack.url}/v1/events")
        forged = await client.get(
            f"{stack.url}/v1/events", headers={"Authorization": "Bearer not.a.token"}
        )
    for response, code in ((missing, "missing_token"), (forged, None)):
        assert response.status_code == 401, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        if code:
            assert response.json()["code"] == code


async def test_a_purchase_shows_on_the_buyers_stream(stack: RunningStack, live: str) -> None:
    user, user_id = new_user("sse-buyer")
    other, other_id = new_user("sse-bystander")
    assert STARTER is not None
    async with (
        open_stream(live, stack.auth(user)) as stream,
        open_stream(live, stack.auth(other)) as bystander,
    ):
        await asyncio.to_thread(buy_starter, stack, user)
        message = await stream.next_event(30.0)
        assert message.event == "billing.credits.changed.v1"
        assert {k: message.json()[k] for k in ("user_id", "balance", "available", "cause")} == {
            "user_id": user_id,
            "balance": STARTER.credits,
            "available": STARTER.credits,
            "cause": "purchase",
        }
        # The bystander's next event is its own, published after the purchase.
        marker = credits(other_id, 1)
        await publish(stack, marker)
        assert (await bystander.next_event()).json()["event_id"] == str(marker.event_id)


# --- without the broker -------------------------------------------------------------------


async def test_the_stream_outlives_the_broker_and_events_resume_after_it_returns(
    stack: RunningStack,
) -> None:
    proxy = BrokerProxy(stack.cfg.amqp_url)
    user, user_id = new_user("outage")
    env = {
        "GATEWAY_AMQP_URL": proxy.url,
        "GATEWAY_AMQP_RECONNECT_S": "0.3",
        "GATEWAY_SSE_HEARTBEAT_S": "0.3",
    }
    # Started in a thread: the proxy needs this event loop while the gateway comes up.
    gateway = extra_gateway(stack, **env)
    url = await asyncio.to_thread(gateway.__enter__)
    try:
        # No broker: not ready (readiness names the broker), yet the stream opens and beats.
        ready_now = await asyncio.to_thread(httpx.get, f"{url}/readyz", timeout=READ_S)
        assert ready_now.status_code == 503, ready_now.text
        assert ready_now.json()["dependencies"]["broker"]["ready"] is False
        async with open_stream(url, stack.auth(user)) as stream:
            assert [(await stream.next(2.0)).comment for _ in range(2)] == ["ping", "ping"]

            await proxy.up()
            first = await _until_delivered(stack, stream, user_id)

            await proxy.down()  # the broker is gone mid-stream
            assert (await stream.next(2.0)).comment == "ping"
            await proxy.up()
            second = await _until_delivered(stack, stream, user_id)
            assert seq(first.id)[1] < seq(second.id)[1]
    finally:
        await proxy.down()
        await asyncio.to_thread(gateway.__exit__, None, None, None)


async def _until_delivered(
    stack: RunningStack, stream: EventStream, user_id: str, timeout_s: float = 30.0
) -> Message:
    """Publish an event for the user every half second until the stream delivers one."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        await publish(stack, credits(user_id, 1))
        with contextlib.suppress(TimeoutError):
            return await stream.next_event(0.5)
    raise AssertionError(f"no event within {timeout_s} s of the broker's return")
