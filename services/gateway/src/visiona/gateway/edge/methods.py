"""Which methods a path allows, answered before routing: ``OPTIONS`` and every 405.

Each route of the app handles one method, so several routes share a path
(``/v1/models/{model_id}``: GET, PATCH, DELETE), and the router's own 405 names the methods
of the first of them only. Here a path's methods are those of every route of its path
template; where a concrete path and a template both match (``/v1/photos/uploads`` and
``/v1/photos/{photo_id}``), the concrete one is the resource, as in OpenAPI: ``GET
/v1/photos/uploads`` is a 405, not a lookup of a photo called "uploads".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from visiona.gateway.edge.problems import send_problem

_TABLE = "visiona_path_templates"


@dataclass(frozen=True)
class _Template:
    regex: re.Pattern[str]
    parameters: int
    methods: frozenset[str]


def _templates(app: FastAPI) -> list[_Template]:
    table: list[_Template] | None = getattr(app.state, _TABLE, None)
    if table is None:
        methods: dict[str, set[str]] = {}
        for context in iter_route_contexts(app.routes):
            if context.path and context.methods:
                methods.setdefault(context.path, set()).update(context.methods)
        table = []
        for path, path_methods in methods.items():
            regex, _, convertors = compile_path(path)
            table.append(_Template(regex, len(convertors), frozenset(path_methods)))
        setattr(app.state, _TABLE, table)
    return table


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """The methods of ``path``'s resource, and OPTIONS; none for a path no route has."""
    matching = [t for t in _templates(app) if t.regex.match(path)]
    if not matching:
        return []
    fewest = min(t.parameters for t in matching)
    methods = {m for t in matching if t.parameters == fewest for m in t.methods}
    return sorted(methods | {"OPTIONS"})


class AllowedMethodsMiddleware:
    """``OPTIONS`` on a known path: 204 with ``Allow``; a method the path does not have: 405
    ``method_not_allowed`` with ``Allow``. A CORS preflight never gets here (the CORS
    middleware outside answers it); an unknown path goes on to its 404."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope)
            allowed = allowed_methods(request.app, scope["path"])
            method = scope["method"]
            if allowed and method not in allowed:
                await send_problem(
                    scope,
                    receive,
                    send,
                    405,
                    "method_not_allowed",
                    f"{method} is not a method of this resource",
                    headers={"Allow": ", ".join(allowed)},
                )
                return
            if allowed and method == "OPTIONS":
                response = Response(status_code=204, headers={"Allow": ", ".join(allowed)})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
