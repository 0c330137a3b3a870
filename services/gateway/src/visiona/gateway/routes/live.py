"""Live progress: the caller's own events as Server-Sent Events.

``sse-starlette`` rather than FastAPI's built-in SSE: it takes the heartbeat interval per
response, ends a stream whose writes stall (``send_timeout``), and ends open streams when
uvicorn begins to shut down instead of holding the shutdown for its whole grace period.
"""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Header, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from visiona.gateway.config import GatewaySettings
from visiona.gateway.edge.auth import CurrentUser
from visiona.gateway.edge.openapi import problems
from visiona.gateway.live.feed import EventHub
from visiona.gateway.live.stream import SEP, event_stream

router = APIRouter(tags=["events"])

_DESCRIPTION = """\
A `text/event-stream` of the signed-in user's own events (`training.*`, `generation.*`,
`billing.credits.changed.v1`, `billing.plan.changed.v1`, `billing.credits.rejected.v1`).
Each message has `id`, `event` (the routing key) and `data` (the event as JSON, with its
`event_id`). The stream opens with a message holding only `retry` and the current `id`;
`: ping` comments keep it alive.

Send `Last-Event-ID` (or `?last_event_id=`; the header wins) to resume after a disconnect:
the events missed since that id are replayed from this gateway instance's buffer (the last
few minutes, a bounded number per user). Ids are per instance. When the id cannot be
honoured (another or a restarted instance, or older than the buffer), the stream starts
fresh with a `resync` event: re-read the resources you show, then follow the stream.
A client too slow to keep up is disconnected; it reconnects with `Last-Event-ID`.
This is a live view, not a source of truth: events may be missed while the gateway is cut
off from the broker, and the job resources stay authoritative.
"""


@router.get(
    "/events",
    summary="The signed-in user's live events (Server-Sent Events)",
    description=_DESCRIPTION,
    response_class=EventSourceResponse,
    responses={
        200: {
            "description": "An endless event stream",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **problems({401: None}),
    },
    operation_id="streamEvents",
)
async def stream_events(
    request: Request,
    user: CurrentUser,
    last_event_id: Annotated[
        str | None, Query(max_length=128, description="Resume after this id (no EventSource)")
    ] = None,
    last_event_id_header: Annotated[
        str | None,
        Header(alias="Last-Event-ID", max_length=128, description="Resume after this id"),
    ] = None,
) -> EventSourceResponse:
    settings: GatewaySettings = request.app.state.backends.settings
    hub: EventHub = request.app.state.events.hub
    # EventSource sends the header on reconnect while the URL keeps its first query: the
    # header is the newer.
    resume = last_event_id_header or last_event_id or None
    shutdown = anyio.Event()
    return EventSourceResponse(
        event_stream(hub, user.user_id, resume, settings.sse_retry_ms, shutdown),
        # no-transform: a compressing proxy otherwise buffers the stream to compress it.
        # sse-starlette adds X-Accel-Buffering: no (nginx) and Connection: keep-alive.
        headers={"Cache-Control": "no-cache, no-transform"},
        ping=settings.sse_heartbeat_s,
        ping_message_factory=lambda: ServerSentEvent(comment="ping", sep=SEP),
        sep=SEP,
        send_timeout=settings.sse_send_timeout_s,
        shutdown_event=shutdown,
        shutdown_grace_period=2.0,
    )
