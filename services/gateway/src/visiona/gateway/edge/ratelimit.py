"""Admission at the edge: rate limits per client IP and per user, shared by every gateway
instance, and the block on writes by a user whose account is being erased.

All of it is one call to the database function ``edge_admit`` (migration 0002, called by
visiona.gateway.repository.rate_bucket): one round trip per request. The buckets are GCRA in Postgres (see the migration): no Redis, and every
instance sees the same budget because the database is the only state and the only clock.
Bucket keys are keyed hashes of the user id and of the client's network
(visiona.gateway.edge.pseudonyms).

Who the client is: ``scope["client"]``, which uvicorn's proxy-header handling has already set
from ``X-Forwarded-For`` when, and only when, the peer is a trusted proxy
(``--forwarded-allow-ips``; 127.0.0.1 by default).

Rate limits fail open: when the database cannot answer in time the request goes through and a
warning is logged (an outage of the limiter must not become an outage of the API).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from visiona.gateway.config import GatewaySettings
from visiona.gateway.edge.auth import principal_of
from visiona.gateway.edge.problems import send_problem
from visiona.gateway.edge.pseudonyms import Pseudonyms
from visiona.gateway.repository import rate_bucket
from visiona.kit import metrics
from visiona.kit.db import Database
from visiona.kit.logging import get_logger

log = get_logger(__name__)

# Health checks are for the orchestrator and the load balancer: never limited.
UNLIMITED_PREFIXES = ("/healthz", "/readyz", "/health")
WEBHOOKS_PREFIX = "/webhooks/"
# Reading is allowed to a user whose account is being erased, and so is asking about (or
# asking again for) the erasure itself.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ERASURE_EXEMPT_PATHS = frozenset({"/v1/me", "/v1/me/deletion"})

Verdict = Literal["ok", "ip_limited", "user_limited", "erasing"]


@dataclass(frozen=True)
class Quota:
    """``burst`` requests at once, refilled at ``rate_per_s``; a rate of 0 is no limit."""

    rate_per_s: float
    burst: int

    @property
    def enabled(self) -> bool:
        return self.rate_per_s > 0

    @property
    def interval_s(self) -> float:
        return 1.0 / self.rate_per_s


@dataclass(frozen=True)
class Admission:
    verdict: Verdict
    quota: int | None
    remaining: int | None
    reset_s: float | None
    retry_after_s: float

    @property
    def limited(self) -> bool:
        return self.verdict in ("ip_limited", "user_limited")

    def headers(self) -> dict[str, str]:
        """``RateLimit-*`` (draft-ietf-httpapi-ratelimit-headers) for the bucket that decided,
        and ``Retry-After`` when limited; whole seconds, rounded up."""
        if self.quota is None or self.remaining is None or self.reset_s is None:
            return {}
        headers = {
            "RateLimit-Limit": str(self.quota),
            "RateLimit-Remaining": str(max(self.remaining, 0)),
            "RateLimit-Reset": str(seconds(self.reset_s)),
        }
        if self.limited:
            headers["Retry-After"] = str(max(1, seconds(self.retry_after_s)))
        return headers


def seconds(value: float) -> int:
    """Whole seconds, rounded up (a client that waits this long is through)."""
    return max(0, math.ceil(value - 1e-6))


async def admit(
    db: Database,
    *,
    ip_key: str | None,
    ip_quota: Quota,
    user_id: str | None,
    user_key: str | None,
    user_quota: Quota,
    check_erasure: bool,
) -> Admission:
    """One round trip: the IP bucket, the erasure block, the user bucket (see edge_admit)."""
    verdict, quota, remaining, reset_s, retry_after_s = await rate_bucket.admit(
        db,
        ip_key=ip_key if ip_quota.enabled else None,
        ip_interval_s=ip_quota.interval_s if ip_quota.enabled else None,
        ip_burst=ip_quota.burst,
        user_id=user_id,
        user_key=user_key if user_quota.enabled else None,
        user_interval_s=user_quota.interval_s if user_quota.enabled else None,
        user_burst=user_quota.burst,
        check_erasure=check_erasure,
    )
    return Admission(verdict, quota, remaining, reset_s, float(retry_after_s or 0))


class _WarnOnce:
    """One warning per key per window: a flood must not become a flood of log lines."""

    def __init__(self, window_s: float = 10.0, size: int = 10_000) -> None:
        self.window_s = window_s
        self.size = size
        self._last: OrderedDict[str, float] = OrderedDict()

    def due(self, key: str) -> bool:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.window_s:
            return False
        self._last[key] = now
        self._last.move_to_end(key)
        if len(self._last) > self.size:
            self._last.popitem(last=False)
        return True


class AdmissionMiddleware:
    """Pure ASGI. Verifies the session token (once; the route's dependency reuses it), makes
    the one edge check, and answers 429 ``rate_limited`` or 409 ``account_erasing`` itself;
    otherwise the request goes on and its response carries the ``RateLimit-*`` headers."""

    def __init__(self, app: ASGIApp, *, settings: GatewaySettings) -> None:
        self.app = app
        self.settings = settings
        self.ip_quota = Quota(settings.ip_rate_per_s, settings.ip_burst)
        self.webhook_quota = Quota(settings.webhook_rate_per_s, settings.webhook_burst)
        self.user_quota = Quota(settings.user_rate_per_s, settings.user_burst)
        self._warn = _WarnOnce()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(UNLIMITED_PREFIXES):
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        pseudonyms: Pseudonyms = state.pseudonyms
        client = scope.get("client")
        host = client[0] if client else None
        webhook = path.startswith(WEBHOOKS_PREFIX)
        ip_quota = self.webhook_quota if webhook else self.ip_quota
        ip_key = f"{'w' if webhook else 'i'}:{pseudonyms.ip('ratelimit-ip', host)}"
        user_id = user_key = None
        check_erasure = False
        if path.startswith("/v1/"):
            principal = await principal_of(scope)
            if principal is not None:
                user_id = principal.user_id
                user_key = f"u:{pseudonyms.of('ratelimit-user', user_id)}"
                check_erasure = (
                    scope["method"] not in SAFE_METHODS and path not in ERASURE_EXEMPT_PATHS
                )
        try:
            async with asyncio.timeout(self.settings.edge_check_timeout_s):
                admission = await admit(
                    state.backplane.db,
                    ip_key=ip_key,
                    ip_quota=ip_quota,
                    user_id=user_id,
                    user_key=user_key,
                    user_quota=self.user_quota,
                    check_erasure=check_erasure,
                )
        except Exception as exc:
            if self._warn.due("unavailable"):
                log.warning("edge.check_failed_open", error_type=type(exc).__name__)
            await self.app(scope, receive, send)
            return
        extra = [(k.lower().encode(), v.encode()) for k, v in admission.headers().items()]
        if admission.limited:
            scope_label = (
                "user" if admission.verdict != "ip_limited" else "webhook" if webhook else "ip"
            )
            metrics.rate_limit_rejections.labels(scope_label).inc()
            if self._warn.due(ip_key if admission.verdict == "ip_limited" else str(user_key)):
                log.warning(
                    "edge.rate_limited",
                    limit="ip" if admission.verdict == "ip_limited" else "user",
                    retry_after_s=round(admission.retry_after_s, 3),
                )
            await send_problem(
                scope,
                receive,
                send,
                429,
                "rate_limited",
                "too many requests; wait as Retry-After says",
                headers=admission.headers(),
            )
            return
        if admission.verdict == "erasing":
            await send_problem(
                scope,
                receive,
                send,
                409,
                "account_erasing",
                "this account is being deleted; it can be read but not changed",
            )
            return

        async def send_with_quota(message: Message) -> None:
            if message["type"] == "http.response.start" and extra:
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_quota)
