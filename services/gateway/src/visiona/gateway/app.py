"""The FastAPI application: REST under /v1, provider webhooks under /webhooks, health outside."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from visiona.gateway import problems
from visiona.gateway.clients import Backends
from visiona.gateway.config import GatewaySettings
from visiona.gateway.events import EventFeed
from visiona.gateway.middleware import RequestContextMiddleware
from visiona.gateway.routes import (
    billing,
    events,
    generation,
    health,
    me,
    prompts,
    training,
    usage,
    webhooks,
)
from visiona.kit.auth import TokenVerifier
from visiona.kit.errors import DomainError
from visiona.kit.logging import configure_logging
from visiona.kit.telemetry import configure_tracing


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    configure_logging(settings)
    configure_tracing(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.backends = Backends(settings)
        app.state.verifier = TokenVerifier(
            issuer=settings.clerk_issuer,
            authorized_parties=settings.clerk_authorized_parties,
            pem_public_key=settings.clerk_jwt_key,
            jwks_url=settings.clerk_jwks_url,
            leeway_s=settings.clock_skew_s,
        )
        # Live events: starts without the broker and connects in the background.
        app.state.events = EventFeed.from_settings(settings)
        await app.state.events.start()
        try:
            yield
        finally:
            await app.state.events.stop()
            await app.state.backends.close()

    app = FastAPI(
        title="Visiona API",
        version="1.0.0",
        description="Personal AI image models: photos in, a LoRA model trained, images out.",
        lifespan=lifespan,
        # FastAPI's native OpenTelemetry: one server span per request (W3C context from the
        # caller). Not a span per dependency and serializer (cost on every request), and no
        # OTel log records (they would carry exception messages; structlog logs instead).
        telemetry={"operation_spans": False, "logs": False},
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.add_middleware(RequestContextMiddleware)
    app.add_exception_handler(grpc.aio.AioRpcError, problems.rpc_error_handler)
    app.add_exception_handler(DomainError, problems.domain_error_handler)
    app.add_exception_handler(RequestValidationError, problems.validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, problems.http_error_handler)
    app.add_exception_handler(Exception, problems.unhandled_error_handler)
    for router in (
        me.router,
        prompts.router,
        usage.router,
        billing.router,
        training.photos_router,
        training.models_router,
        generation.generations_router,
        generation.images_router,
        events.router,
    ):
        app.include_router(router, prefix="/v1")
    app.include_router(webhooks.router)
    app.include_router(health.router)
    return app
