"""A TCP proxy a test can cut: what a browser meets when the network or a load balancer drops
its connections, while the server behind it runs on untouched.

- :meth:`CutProxy.cut` drops every connection open through it at once, mid-response (a reset
  to both sides): an event stream ends as a broken response, not a complete one.
- :meth:`CutProxy.hold` resets each new connection as it arrives, until :meth:`release`: the
  server is out of reach for a while.
- :attr:`CutProxy.exchanges` keeps the head of each request passed and of its answer, in
  order: what the browser really sent (its cookies) and what the server answered.

Threads, not an event loop: the browser tests that use it are synchronous (Playwright's sync
API), and it runs beside them.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

# SO_LINGER on, zero seconds: close() resets the connection instead of ending it in order.
_RESET = struct.pack("ii", 1, 0)


@dataclass
class Exchange:
    """One request passed through (its head) and the head of its answer, once it came."""

    request: bytes = b""
    answer: bytes = b""

    def header(self, name: str) -> str | None:
        for line in self.request.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
            key, _, value = line.decode("latin-1").partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None

    @property
    def path(self) -> str:
        parts = self.request.split(b" ", 2)
        return parts[1].decode("latin-1") if len(parts) > 1 else ""

    @property
    def status(self) -> int | None:
        parts = self.answer.split(b" ", 2)
        return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


_METHODS = (b"GET ", b"POST ", b"PUT ", b"PATCH ", b"DELETE ", b"HEAD ", b"OPTIONS ")


class _Connection:
    """The exchanges of one connection, in order: a browser sends its next request on a
    connection whose last answer was complete (keep-alive), so one connection may carry
    several. A chunk that starts a request or an answer is taken as its head (what tests send
    and read is small: each head comes in one chunk)."""

    def __init__(self, recorded: list[Exchange]) -> None:
        self.recorded = recorded
        self.waiting: list[Exchange] = []

    def sent(self, data: bytes) -> None:
        if data.startswith(_METHODS):
            exchange = Exchange(request=data[:8192])
            self.recorded.append(exchange)
            self.waiting.append(exchange)

    def answered(self, data: bytes) -> None:
        if data.startswith(b"HTTP/1.") and self.waiting:
            self.waiting.pop(0).answer = data[:8192]


class CutProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._held = False
        # Connections passed to the server, and connections reset on arrival while held.
        self.exchanges: list[Exchange] = []
        self.refused = 0
        self._thread = threading.Thread(target=self._accept, name="cut-proxy", daemon=True)
        self._thread.start()

    def cut(self) -> int:
        """Drop every open connection; how many there were (each counts its two sides)."""
        with self._lock:
            dropped, self._open = self._open, set()
        for sock in dropped:
            _reset(sock)
        return len(dropped) // 2

    def hold(self) -> None:
        """From now on, reset each new connection at once (until :meth:`release`)."""
        self._held = True

    def release(self) -> None:
        self._held = False

    def close(self) -> None:
        self._listener.close()
        self.cut()
        self._thread.join(5)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._held:
                self.refused += 1
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _reset(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open |= {client, upstream}
            connection = _Connection(self.exchanges)
            ends = threading.Semaphore(0)
            for source, sink, seen in (
                (client, upstream, connection.sent),
                (upstream, client, connection.answered),
            ):
                threading.Thread(
                    target=self._pipe, args=(source, sink, ends, seen), daemon=True
                ).start()

    def _pipe(
        self,
        source: socket.socket,
        sink: socket.socket,
        ends: threading.Semaphore,
        seen: Callable[[bytes], None],
    ) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                seen(data)
                sink.sendall(data)
        # One side ended: end the other in order (a cut has reset both already).
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
        # The second direction to end closes the connection.
        if ends.acquire(blocking=False):
            with self._lock:
                self._open -= {source, sink}
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.close()
        else:
            ends.release()


def _reset(sock: socket.socket) -> None:
    # shutdown() wakes a thread blocked in recv() on the socket (close() alone would not, and
    # the connection would live on until it returned).
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


@contextlib.contextmanager
def cut_proxy(target_host: str, target_port: int) -> Iterator[CutProxy]:
    proxy = CutProxy(target_host, target_port)
    try:
        yield proxy
    finally:
        proxy.close()
