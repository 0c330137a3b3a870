"""A TCP proxy in front of RabbitMQ that a test controls: for the process behind it, the
broker is gone, back, or flapping, while the shared broker itself is never touched.

- Until :meth:`BrokerProxy.up` (and after :meth:`BrokerProxy.down`) nothing listens on its
  port: every connection is refused, as from a stopped broker.
- ``up()``: traffic passes both ways.
- ``up(drop_at=QUEUE_DECLARE)``: connections are accepted and pass until the client sends
  that AMQP method, then are cut before the broker sees it: a broker that accepts the
  connection and drops it during channel or queue declaration. :attr:`BrokerProxy.dropped`
  counts the connections cut so.

Its server runs on the event loop of the test that starts it, so an async test drives it
and runs blocking calls (starting processes) in threads.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit, urlunsplit

from visiona.emulators.ports import free_port

# AMQP 0-9-1 methods as (class id, method id).
Method = tuple[int, int]
EXCHANGE_DECLARE: Method = (40, 10)
QUEUE_DECLARE: Method = (50, 10)
BASIC_CONSUME: Method = (60, 20)

_PROTOCOL_HEADER = 8  # b"AMQP\x00\x00\x09\x01"
_FRAME_HEADER = 7  # type (1), channel (2), size (4); then the payload and a frame-end octet
_METHOD_FRAME = 1


def methods_in(buffer: bytearray) -> list[Method]:
    """The methods of the complete frames at the start of ``buffer``, which loses them."""
    found = []
    while len(buffer) >= _FRAME_HEADER:
        size = int.from_bytes(buffer[3:7], "big")
        end = _FRAME_HEADER + size + 1
        if len(buffer) < end:
            break
        if buffer[0] == _METHOD_FRAME and size >= 4:
            payload = buffer[_FRAME_HEADER : _FRAME_HEADER + 4]
            found.append((int.from_bytes(payload[:2], "big"), int.from_bytes(payload[2:], "big")))
        del buffer[:end]
    return found


class BrokerProxy:
    def __init__(self, amqp_url: str) -> None:
        parts = urlsplit(amqp_url)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 5672)
        self.port = free_port()
        netloc = f"{parts.username}:{parts.password}@127.0.0.1:{self.port}"
        self.url = urlunsplit((parts.scheme, netloc, parts.path or "/", "", ""))
        self.drop_at: Method | None = None
        self.dropped = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def up(self, drop_at: Method | None = None) -> None:
        """Listen (if not yet) and pass traffic; with ``drop_at``, cut each connection when
        its client sends that method (connections already open included)."""
        self.drop_at = drop_at
        if self._server is None:
            self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def down(self) -> None:
        """Stop listening and cut every open connection."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}

        def cut() -> None:
            writer.transport.abort()
            up_writer.transport.abort()

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        async def from_client() -> None:
            frames = bytearray()
            header_left = _PROTOCOL_HEADER
            with contextlib.suppress(OSError):
                while data := await reader.read(65536):
                    skipped = min(header_left, len(data))
                    header_left -= skipped
                    frames += data[skipped:]
                    seen = methods_in(frames)
                    if self.drop_at is not None and self.drop_at in seen:
                        self.dropped += 1
                        cut()
                        return
                    up_writer.write(data)
                    await up_writer.drain()
            up_writer.transport.abort()

        await asyncio.gather(from_client(), pipe(up_reader, writer))
