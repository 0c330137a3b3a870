"""One user's live events as a Server-Sent Events body (``GET /v1/events``, routes/live.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import anyio
from sse_starlette import ServerSentEvent

from visiona.gateway.live.feed import EventHub, LiveEvent, Subscription

SEP = "\n"


def _message(event: LiveEvent) -> ServerSentEvent:
    return ServerSentEvent(event.data, event=event.routing_key, id=event.id, sep=SEP)


async def _close_on(shutdown: anyio.Event, stream: Subscription) -> None:
    await shutdown.wait()
    stream.close()


async def event_stream(
    hub: EventHub,
    user_id: str,
    last_event_id: str | None,
    retry_ms: int,
    shutdown: anyio.Event,
) -> AsyncIterator[ServerSentEvent]:
    # Subscribed in the body, so the subscription lives exactly as long as the response.
    stream = hub.subscribe(user_id, last_event_id)
    # At server shutdown the stream ends cleanly (a complete response, not a cut one).
    closer = asyncio.create_task(_close_on(shutdown, stream))
    try:
        # No data, so EventSource dispatches nothing, but it adopts the id: a reconnect
        # resumes from here even if no event came in between.
        yield ServerSentEvent(id=f"{hub.instance}-{stream.position}", retry=retry_ms, sep=SEP)
        if stream.resync is not None:
            yield ServerSentEvent(json.dumps({"reason": stream.resync}), event="resync", sep=SEP)
        for event in stream.replay:
            yield _message(event)
        while (live := await stream.next()) is not None:
            yield _message(live)
    finally:
        closer.cancel()
        hub.unsubscribe(stream)
