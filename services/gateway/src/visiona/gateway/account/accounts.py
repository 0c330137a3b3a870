"""Clerk's user lifecycle, from its Svix-signed webhooks (``POST /webhooks/clerk``).

- ``user.created`` provisions the account (email and name, as Clerk holds them);
- ``user.updated`` updates it; a delivery older than what we have (Clerk's ``updated_at``)
  changes nothing, so out-of-order retries are harmless;
- ``user.deleted`` starts the account's erasure (visiona.gateway.account.erasure), with
  Clerk's copy already gone.

The body is verified as received (visiona.gateway.providers.clerk), then the ``svix-id`` is
recorded in the same transaction as its effect: a redelivery is answered 200 and does
nothing. Nothing is recreated for a user whose erasure runs or is complete.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from visiona.gateway.account import erasure
from visiona.gateway.config import GatewaySettings
from visiona.gateway.repository import account as repository
from visiona.gateway.repository import deletion as deletions
from visiona.kit.db import Database, UnitOfWork
from visiona.kit.logging import get_logger

log = get_logger(__name__)

HANDLED = ("user.created", "user.updated", "user.deleted")


@dataclass(frozen=True)
class Outcome:
    svix_id: str
    type: str
    duplicate: bool


def _primary_email(user: Mapping[str, Any]) -> str | None:
    primary = user.get("primary_email_address_id")
    for email in user.get("email_addresses") or []:
        if isinstance(email, Mapping) and email.get("id") == primary:
            value = email.get("email_address")
            return value if isinstance(value, str) else None
    return None


async def ingest(
    db: Database, settings: GatewaySettings, svix_id: str, event: Mapping[str, Any]
) -> Outcome:
    kind = str(event["type"])
    data = event.get("data") if isinstance(event.get("data"), Mapping) else {}
    assert isinstance(data, Mapping)
    user_id = data.get("id")
    async with db.uow() as uow:
        if not await repository.record_clerk_delivery(uow, svix_id, kind):
            return Outcome(svix_id, kind, duplicate=True)
        if kind in HANDLED and isinstance(user_id, str) and user_id:
            await uow.act_as(user_id)
            await _apply(uow, settings, kind, user_id, data)
        else:
            log.info("clerk.event_ignored", type=kind)
        await uow.commit()
    return Outcome(svix_id, kind, duplicate=False)


async def _erased_or_erasing(uow: UnitOfWork, settings: GatewaySettings, user_id: str) -> bool:
    if await deletions.find(uow, user_id) is not None:
        return True
    return await deletions.find_receipt(uow, erasure.subject_of(settings, user_id)) is not None


async def _apply(
    uow: UnitOfWork, settings: GatewaySettings, kind: str, user_id: str, data: Mapping[str, Any]
) -> None:
    if kind == "user.deleted":
        if await deletions.find_receipt(uow, erasure.subject_of(settings, user_id)) is not None:
            return  # erased already (we asked Clerk to delete the user: this is the echo)
        await erasure.request_erasure(uow, settings, user_id, source="clerk")
        return
    if await _erased_or_erasing(uow, settings, user_id):
        return
    updated = data.get("updated_at")
    await repository.upsert_from_clerk(
        uow,
        user_id,
        email=_primary_email(data),
        first_name=data.get("first_name"),
        last_name=data.get("last_name"),
        image_url=data.get("image_url"),
        clerk_updated_at=int(updated) if isinstance(updated, int | float) else 0,
    )


async def profile(db: Database, user_id: str) -> dict[str, Any]:
    """The profile Clerk sent us for the user (empty before the first ``user.created``)."""
    async with db.uow(user_id) as uow:
        return await repository.profile(uow, user_id) or {}
