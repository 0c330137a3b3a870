"""The authenticated caller, as a FastAPI dependency.

The edge's own checks (per-user rate limit, erasure block, idempotency keys) need the caller
before routing, so :func:`principal_of` verifies the session token once per request and keeps
the result in the request's state, where the dependency finds it.
"""

from __future__ import annotations

from typing import Annotated, Any

import structlog
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import HTTPConnection
from starlette.types import Scope

from visiona.gateway.config import GatewaySettings
from visiona.kit.auth import Principal, TokenVerifier
from visiona.kit.errors import Unauthenticated

bearer = HTTPBearer(auto_error=False, description="Clerk session token (RS256 JWT)")

# Browsers send Clerk's session as this cookie instead of a header.
SESSION_COOKIE = "__session"


def bearer_token(conn: HTTPConnection) -> str | None:
    """The token of an ``Authorization: Bearer`` header, if the request has one."""
    scheme, _, credentials = conn.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return None


def session_token(conn: HTTPConnection) -> str | None:
    """The bearer token of the Authorization header, else the session cookie."""
    return bearer_token(conn) or conn.cookies.get(SESSION_COOKIE) or None


def authenticates_with_cookie(conn: HTTPConnection) -> bool:
    """True when the request's credentials are the session cookie: the browser sent them on
    its own, so they prove nothing about which page asked (visiona.gateway.edge.security)."""
    return bearer_token(conn) is None and bool(conn.cookies.get(SESSION_COOKIE))


async def principal_of(scope: Scope) -> Principal | None:
    """The verified caller of this request, or None without a valid session token (the
    route's dependency then answers 401 with the reason). Verified once per request."""
    state = scope.setdefault("state", {})
    if "principal" in state:
        cached: Principal | None = state["principal"]
        return cached
    principal: Principal | None = None
    token = session_token(HTTPConnection(scope))
    if token:
        verifier: TokenVerifier = scope["app"].state.verifier
        try:
            principal = await verifier.verify(token)
        except Exception:
            # Not signed in, as far as the edge is concerned; the route's dependency verifies
            # again and answers with the reason.
            principal = None
    state["principal"] = principal
    return principal


async def authenticated(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        token = credentials.credentials if credentials is not None else None
        if token is None:
            token = request.cookies.get(SESSION_COOKIE)
        if not token:
            raise Unauthenticated("a session token is required", code="missing_token")
        verifier: TokenVerifier = request.app.state.verifier
        principal = await verifier.verify(token)
    request.state.user_id = principal.user_id
    structlog.contextvars.bind_contextvars(user_id=principal.user_id)
    return principal


async def authenticated_if_any(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal | None:
    """The caller when the request carries a session token, None when it carries none. A
    token that does not verify is still refused (401): a signed-in client whose token went
    stale must hear so rather than be answered as a stranger."""
    if session_token(request) is None:
        return None
    return await authenticated(request, credentials)


CurrentUser = Annotated[Principal, Depends(authenticated)]
# For the few reads open to anyone (the price list of the signed-out landing page).
OptionalUser = Annotated[Principal | None, Depends(authenticated_if_any)]


# -- operators (the /v1/admin routes) ------------------------------------------------------------


def claim_at(claims: dict[str, Any], path: str) -> object:
    """The claim at a dotted ``path`` (``metadata.role``), or None."""
    value: object = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def is_operator(principal: Principal | None, settings: GatewaySettings) -> bool:
    """Whether the caller is an operator: their Clerk user id is in
    ``GATEWAY_OPERATOR_USER_IDS``, or their session token carries ``GATEWAY_OPERATOR_ROLE`` at
    ``GATEWAY_OPERATOR_ROLE_CLAIM`` (a string, or a list holding it). Nobody else is, and
    nobody at all when neither is configured."""
    if principal is None:
        return False
    if principal.user_id in settings.operator_user_ids:
        return True
    role = settings.operator_role
    if not role:
        return False
    value = claim_at(principal.claims, settings.operator_role_claim)
    return value == role or (isinstance(value, list) and role in value)


async def operator(
    request: Request,
    # Unused: it only states in the OpenAPI that the routes take the session token.
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)] = None,
) -> Principal:
    """The operator calling an admin route. Anyone else (signed out, a token that does not
    verify, a signed-in user) is answered exactly as a route that does not exist (404
    ``route_not_found``), before anything else is read or done: the admin surface is not
    disclosed to who may not use it."""
    principal = await principal_of(request.scope)
    if not is_operator(principal, request.app.state.settings):
        raise StarletteHTTPException(status_code=404)
    assert principal is not None
    request.state.user_id = principal.user_id
    structlog.contextvars.bind_contextvars(user_id=principal.user_id, operator=True)
    return principal


CurrentOperator = Annotated[Principal, Depends(operator)]
