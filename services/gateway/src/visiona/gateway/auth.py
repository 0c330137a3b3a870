"""The authenticated caller, as a FastAPI dependency."""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from visiona.kit.auth import Principal, TokenVerifier
from visiona.kit.errors import Unauthenticated

bearer = HTTPBearer(auto_error=False, description="Clerk session token (RS256 JWT)")


async def authenticated(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    token = credentials.credentials if credentials is not None else None
    if token is None:
        # Browsers send Clerk's session as the __session cookie instead of a header.
        token = request.cookies.get("__session")
    if not token:
        raise Unauthenticated("a session token is required", code="missing_token")
    verifier: TokenVerifier = request.app.state.verifier
    principal = await verifier.verify(token)
    request.state.user_id = principal.user_id
    structlog.contextvars.bind_contextvars(user_id=principal.user_id)
    return principal


CurrentUser = Annotated[Principal, Depends(authenticated)]
