"""``/metrics`` on the gateway's own port, and the HTTP metrics of every request.

Pure ASGI and outermost, so the edge's own refusals (429, 413, 405, a CORS preflight) are
counted like any answer. ``/metrics`` is answered here, before anything else: no rate limit,
no session, no database, not in the OpenAPI document (the ingress routes only ``/v1`` and
``/webhooks`` here, so it is reachable inside the cluster only).

The ``route`` label is the route's template (``/v1/models/{model_id}``, never the path:
paths carry ids), ``unmatched`` when no route has the path. An event stream (SSE) is counted
when it ends but its duration is not observed: that is how long the client listened, not
how long we took to answer.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import REGISTRY, make_asgi_app
from starlette.routing import BaseRoute, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from visiona.kit import metrics

METRICS_PATH = "/metrics"
UNMATCHED = "unmatched"
_EVENT_STREAM = b"text/event-stream"
_exposition = make_asgi_app(REGISTRY)


@dataclass(frozen=True)
class _Template:
    path: str
    regex: re.Pattern[str]
    methods: frozenset[str] | None


class RouteTemplates:
    """Every route of an app with its whole template. FastAPI keeps an included router's
    routes as they were declared (``/models/{model_id}``) under the inclusion's prefix
    (``/v1``), and the route it puts in the scope is that declared one: the whole template is
    the prefixes on the way down plus its path."""

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        self.by_route: dict[int, str] = {}
        self.templates: list[_Template] = []
        self._collect(routes, "")

    def _collect(self, routes: Sequence[BaseRoute], prefix: str) -> None:
        for route in routes:
            inner = getattr(route, "original_router", None)
            context = getattr(route, "include_context", None)
            if inner is not None and context is not None:
                self._collect(inner.routes, prefix + str(getattr(context, "prefix", "")))
                continue
            path = getattr(route, "path", None)
            if not isinstance(path, str):
                continue
            template = prefix + path
            self.by_route[id(route)] = template
            methods = getattr(route, "methods", None)
            regex, _, _ = compile_path(template)
            self.templates.append(
                _Template(template, regex, frozenset(methods) if methods else None)
            )

    def of(self, scope: Scope) -> str:
        """The template of the route that answered, else of the route whose path matches
        (an edge refusal answers before routing; a wrong method still names its route);
        ``unmatched`` when none does."""
        route = scope.get("route")
        if route is not None and id(route) in self.by_route:
            return self.by_route[id(route)]
        path = scope["path"]
        partial = None
        for template in self.templates:
            if template.regex.match(path):
                if template.methods is None or scope["method"] in template.methods:
                    return template.path
                partial = partial or template.path
        return partial or UNMATCHED


def route_template(scope: Scope) -> str:
    """The route template of a request to ``scope["app"]`` (see :class:`RouteTemplates`)."""
    app = scope["app"]
    templates: RouteTemplates | None = getattr(app.state, "route_templates", None)
    if templates is None:
        # Built at the first request, once every router is included.
        templates = app.state.route_templates = RouteTemplates(app.router.routes)
    return templates.of(scope)


@functools.cache
def _series(method: str, route: str) -> Any:
    return metrics.http_duration.labels(method, route)


@functools.cache
def _counter(method: str, route: str, code: int) -> Any:
    return metrics.http_requests.labels(method, route, str(code))


# Methods are a bounded label too: anything else is counted as OTHER.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HttpMetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == METRICS_PATH and scope["method"] in ("GET", "HEAD"):
            await _exposition(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception before any answer is the server's error
        streaming = False
        exemplar: dict[str, str] | None = None

        async def send_counted(message: Message) -> None:
            nonlocal status, streaming, exemplar
            if message["type"] == "http.response.start":
                status = message["status"]
                # The request's server span is current while the app answers, not after.
                exemplar = metrics.trace_exemplar()
                for key, value in message.get("headers", ()):
                    if key.lower() == b"content-type" and value.startswith(_EVENT_STREAM):
                        streaming = True
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        finally:
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            route = route_template(scope)
            if not streaming:
                _series(method, route).observe(time.perf_counter() - started, exemplar)
            _counter(method, route, status).inc()
