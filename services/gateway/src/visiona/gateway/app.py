"""The FastAPI application: REST under /v1, provider webhooks under /webhooks, health outside."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from visiona.gateway.account import audit
from visiona.gateway.backplane import Backplane
from visiona.gateway.clients import Backends
from visiona.gateway.config import GatewaySettings
from visiona.gateway.edge import problems
from visiona.gateway.edge.idempotency import IdempotencyMiddleware
from visiona.gateway.edge.methods import AllowedMethodsMiddleware
from visiona.gateway.edge.metrics import HttpMetricsMiddleware
from visiona.gateway.edge.openapi import document_problems
from visiona.gateway.edge.pseudonyms import Pseudonyms
from visiona.gateway.edge.ratelimit import AdmissionMiddleware
from visiona.gateway.edge.request_context import RequestContextMiddleware
from visiona.gateway.edge.security import (
    CORS_ALLOWED_HEADERS,
    CORS_EXPOSED_HEADERS,
    CORS_METHODS,
    AllowListCORSMiddleware,
    BodyLimitMiddleware,
    CrossSiteRequestGuard,
    SecurityHeadersMiddleware,
)
from visiona.gateway.live.feed import EventFeed
from visiona.gateway.repository import idempotency_key, rate_bucket
from visiona.gateway.routes import (
    account,
    admin,
    admin_ops,
    billing,
    generation,
    health,
    live,
    pages,
    prompts,
    training,
    webhooks,
)
from visiona.kit.auth import TokenVerifier
from visiona.kit.errors import DomainError
from visiona.kit.events import CreditsChangedV1
from visiona.kit.faults import DEPENDENCY_ERROR_BASES
from visiona.kit.logging import configure_logging
from visiona.kit.telemetry import configure_tracing


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    configure_logging(settings)
    configure_tracing(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.backends = Backends(settings)
        # Raises (the gateway does not start) without a usable GATEWAY_PSEUDONYM_KEY.
        app.state.pseudonyms = Pseudonyms.from_settings(settings)
        backplane = Backplane.from_settings(settings)
        await backplane.connect()
        backplane.add_consumer(audit.CONSUMER, {CreditsChangedV1: audit.on_credits_changed})
        db, every = backplane.db, settings.edge_sweep_interval_s
        backplane.add_periodic("rate-buckets-sweep", every, lambda: rate_bucket.sweep(db))
        backplane.add_periodic("idempotency-sweep", every, lambda: idempotency_key.sweep(db))
        backplane.install_account_sagas()
        backplane.add_metrics_sampler()
        app.state.backplane = backplane
        await backplane.start()
        app.state.verifier = TokenVerifier(
            issuer=settings.clerk_issuer,
            authorized_parties=settings.clerk_authorized_parties,
            pem_public_key=settings.clerk_jwt_key,
            jwks_url=settings.clerk_jwks_url,
            leeway_s=settings.clock_skew_s,
            renewal_hint=settings.session_renewal_hint,
        )
        # Live events: starts without the broker and connects in the background.
        app.state.events = EventFeed.from_settings(settings)
        await app.state.events.start()
        try:
            yield
        finally:
            await app.state.events.stop()
            await backplane.stop()
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
    # Read by the edge's dependencies (the operator rule, visiona.gateway.edge.auth).
    app.state.settings = settings
    # Outermost first (Starlette runs the last added first):
    # - metrics: /metrics itself (before any limit or check), and every answer counted, the
    #   edge's own refusals included;
    # - request context: every answer, including the edge's own refusals, has a request id;
    # - security headers: on every answer, CORS preflights and refusals included;
    # - CORS: a browser can read a 413 or 429 too; preflights are answered before any limit
    #   or database work (they carry no credentials);
    # - methods: OPTIONS, and a method the path does not have (405), answered with every
    #   method of the path in Allow (no credentials, no database);
    # - cross-site guard: a request made with the session cookie from a page that is not ours,
    #   or a body that is not JSON, is refused before anything reads the body or the database;
    # - body limit: an oversized body costs no database round trip;
    # - admission (rate limits, erasure block): one round trip, before anything else uses the
    #   database, so a replay counts against the budget too;
    # - idempotency, innermost: it stores and replays exactly what the routes answered, and
    #   everything outside it adds the current request's headers to a replay.
    app.add_middleware(IdempotencyMiddleware, settings=settings)
    app.add_middleware(AdmissionMiddleware, settings=settings)
    app.add_middleware(
        BodyLimitMiddleware, max_bytes=settings.max_body_bytes, exempt=("/webhooks/",)
    )
    app.add_middleware(CrossSiteRequestGuard, allow_origins=settings.cors_origins)
    app.add_middleware(AllowedMethodsMiddleware)
    app.add_middleware(
        AllowListCORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=CORS_METHODS,
        allow_headers=CORS_ALLOWED_HEADERS,
        expose_headers=CORS_EXPOSED_HEADERS,
        allow_credentials=True,
    )
    app.add_middleware(
        SecurityHeadersMiddleware,
        docs_paths={
            p for p in (app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url) if p
        },
        hsts_max_age_s=settings.hsts_max_age_s if settings.served_over_https else None,
    )
    app.add_middleware(RequestContextMiddleware)
    app.add_middleware(HttpMetricsMiddleware)
    app.add_exception_handler(grpc.aio.AioRpcError, problems.rpc_error_handler)
    app.add_exception_handler(DomainError, problems.domain_error_handler)
    app.add_exception_handler(RequestValidationError, problems.validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, problems.http_error_handler)
    for error_class in DEPENDENCY_ERROR_BASES:
        app.add_exception_handler(error_class, problems.dependency_error_handler)
    app.add_exception_handler(Exception, problems.unhandled_error_handler)
    for router in (
        account.router,
        prompts.router,
        billing.usage_router,
        billing.router,
        training.photos_router,
        training.models_router,
        generation.generations_router,
        generation.images_router,
        live.router,
        admin.router,
        admin_ops.router,
    ):
        app.include_router(router, prefix="/v1")
    app.include_router(webhooks.router)
    app.include_router(health.router)
    app.include_router(pages.router)
    document_problems(app)
    return app
