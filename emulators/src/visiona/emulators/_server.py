"""Shared plumbing for the emulators: their FastAPI app, and running it in the foreground or in a
thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Generic, TypeVar

import uvicorn
from fastapi import FastAPI, Request, Response

from visiona.emulators._state import StateFile

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


def persisted_app(
    title: str, state_file: StateFile, save: Callable[[], None], resume: Callable[[], None]
) -> FastAPI:
    """:func:`new_app` for an emulator keeping its state in ``state_file``: ``resume`` runs once,
    when a loop first serves (at start-up, or at the first request of an app without lifespan:
    what a previous run left unfinished), every answer is saved before it is sent, and the
    file is closed at shutdown."""
    resumed = False

    def resume_once() -> None:
        nonlocal resumed
        if not resumed:
            resumed = True
            resume()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        resume_once()
        yield
        state_file.close()

    app = new_app(title, lifespan=lifespan)
    save_every_answer(app, save, resume_once)
    return app


def save_every_answer(app: FastAPI, save: Callable[[], None], resume: Callable[[], None]) -> None:
    """Middleware: ``resume`` (it must be idempotent) before, ``save`` after every request."""

    @app.middleware("http")
    async def saved(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        # Every answer stands on disk before it is sent (a restart keeps what it said).
        resume()
        response = await call_next(request)
        save()
        return response


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
