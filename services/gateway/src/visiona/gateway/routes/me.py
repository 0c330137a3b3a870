"""Who am I."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from visiona.gateway.auth import CurrentUser

router = APIRouter(tags=["account"])


class Me(BaseModel):
    """The signed-in user, as their session token states."""

    user_id: str
    session_id: str | None
    authorized_party: str | None


@router.get("/me", response_model=Me, summary="The signed-in user")
async def get_me(user: CurrentUser) -> Me:
    azp = user.claims.get("azp")
    return Me(
        user_id=user.user_id,
        session_id=user.session_id,
        authorized_party=azp if isinstance(azp, str) else None,
    )
