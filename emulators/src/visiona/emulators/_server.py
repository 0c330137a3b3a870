"""Shared plumbing for the emulators: their FastAPI app, and running it in the foreground or in a
thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

import uvicorn
from fastapi import FastAPI

# Emulators are dev/test infrastructure: access logs at info level would drown the services'
# own logs in `make up`, so everything below warning is dropped.
LOG_LEVEL = "warning"

S = TypeVar("S")


def new_app(title: str, **options: Any) -> FastAPI:
    """An emulator's app: no generated docs (it stands in for an API documented elsewhere), and
    ``GET /healthz`` for the stack runner's readiness checks. ``options`` go to FastAPI."""
    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None, **options)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def serve(app: Any, host: str, port: int) -> None:
    """Run ``app`` with uvicorn in the foreground until SIGINT/SIGTERM."""
    uvicorn.run(app, host=host, port=port, log_level=LOG_LEVEL, access_log=False)


class Foreground(Generic[S]):
    """An emulator's ``serve(host, port, settings)``: build its app from ``settings`` (None: its
    defaults) and run it in the foreground until SIGINT/SIGTERM."""

    def __init__(self, create_app: Callable[[S | None], Any], default_port: int) -> None:
        self.create_app = create_app
        self.default_port = default_port

    def __call__(
        self, host: str = "127.0.0.1", port: int | None = None, settings: S | None = None
    ) -> None:
        serve(self.create_app(settings), host, self.default_port if port is None else port)


@contextmanager
def running(app: Any, host: str = "127.0.0.1", *, timeout_s: float = 10.0) -> Iterator[str]:
    """Serve ``app`` on a free port in a background thread; yield its base URL, stop on exit.

    The socket is bound here (port 0) and handed to uvicorn, so there is no window in which
    another process can take the port between choosing and binding it.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level=LOG_LEVEL, access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout_s
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"emulator did not start on {host}:{port}")
            time.sleep(0.01)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout_s)
        sock.close()
