"""Liveness and readiness (outside /v1, unauthenticated, for probes)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from visiona.gateway.clients import Backends
from visiona.gateway.schemas.health import Dependency, Health, Readiness
from visiona.kit.auth import TokenVerifier

router = APIRouter(tags=["health"])


@router.get(
    "/healthz", response_model=Health, summary="The process is alive", operation_id="checkLiveness"
)
async def healthz() -> Health:
    return Health(status="ok")


async def _check_backend(backends: Backends, name: str) -> Dependency:
    try:
        status = await backends.all[name].health(backends.settings.readiness_timeout_s)
    except Exception as exc:
        code = getattr(exc, "code", lambda: None)()
        return Dependency(ready=False, detail=f"unreachable ({code.name if code else 'error'})")
    return Dependency(ready=status == "SERVING", detail=status.lower())


async def _check_database(request: Request) -> Dependency:
    backplane = request.app.state.backplane
    try:
        await asyncio.wait_for(backplane.db.ping(), backplane.settings.readiness_timeout_s)
    except Exception as exc:
        return Dependency(ready=False, detail=f"database unreachable ({type(exc).__name__})")
    return Dependency(ready=True, detail="database answers")


async def _check_broker(request: Request) -> Dependency:
    """The backplane's bus (connected, every consumer consuming) and the live-event feed's
    own connection: without them events wait in the outbox and streams stay silent."""
    missing = list(request.app.state.backplane.broker_missing())
    if not request.app.state.events.connected:
        missing.append("live-event feed")
    if missing:
        return Dependency(ready=False, detail=f"waiting for {', '.join(missing)}")
    return Dependency(ready=True, detail="bus connected, consumers consuming, feed connected")


async def _check_keys(verifier: TokenVerifier) -> Dependency:
    try:
        await verifier.ready()
    except Exception as exc:
        return Dependency(
            ready=False, detail=f"session-token keys unavailable ({type(exc).__name__})"
        )
    return Dependency(ready=True, detail="session-token keys loaded")


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness}},
    summary="Every dependency answers",
    operation_id="checkReadiness",
)
async def readyz(request: Request) -> JSONResponse:
    backends: Backends = request.app.state.backends
    names = list(backends.all)
    results = await asyncio.gather(
        *(_check_backend(backends, n) for n in names),
        _check_keys(request.app.state.verifier),
        _check_database(request),
        _check_broker(request),
    )
    deps = dict(zip([*names, "auth_keys", "database", "broker"], results, strict=True))
    body = Readiness(ready=all(d.ready for d in deps.values()), dependencies=deps)
    return JSONResponse(body.model_dump(), status_code=200 if body.ready else 503)
