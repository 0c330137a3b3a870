"""Clerk's user lifecycle, from its Svix-signed webhooks (``POST /webhooks/clerk``).

- ``user.created`` provisions the account (email and name, as Clerk holds them);
- ``user.updated`` updates it; a delivery older than what we have (Clerk's ``updated_at``)
  changes nothing, so out-of-order retries are harmless;
- ``user.deleted`` starts the account's erasure (visiona.gateway.erasure), with Clerk's copy
  already gone.

The body is verified as received (``svix`` against the current and the previous secret, five
minutes of tolerance; a well-signed delivery out of tolerance is refused as too old or too
new, not as a bad signature), then the ``svix-id`` is recorded in the same transaction as its
effect:
a redelivery is answered 200 and does nothing. Nothing is recreated for a user whose erasure
runs or is complete.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from svix.webhooks import Webhook, WebhookVerificationError

from visiona.gateway import erasure
from visiona.gateway.config import GatewaySettings
from visiona.kit.db import Database, UnitOfWork
from visiona.kit.logging import get_logger

log = get_logger(__name__)

HANDLED = ("user.created", "user.updated", "user.deleted")
# svix's tolerance on svix-timestamp, either way (standardwebhooks' own, not configurable).
SVIX_TOLERANCE_S = 300


class InvalidClerkWebhook(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Outcome:
    svix_id: str
    type: str
    duplicate: bool


def verify(settings: GatewaySettings, body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
    """The verified event, or InvalidClerkWebhook (no secret configured is a refusal too)."""
    secrets = [
        s.get_secret_value()
        for s in (settings.clerk_webhook_secret, settings.clerk_webhook_previous_secret)
        if s is not None and s.get_secret_value()
    ]
    if not secrets:
        raise InvalidClerkWebhook("webhook_not_configured", "Clerk webhooks are not configured")
    wanted = {
        k: headers[k] for k in ("svix-id", "svix-timestamp", "svix-signature") if k in headers
    }
    if len(wanted) < 3:
        raise InvalidClerkWebhook("signature_missing", "missing svix-id, timestamp or signature")
    for secret in secrets:
        try:
            Webhook(secret).verify(body, wanted)  # svix 2.x returns nothing: parse below
        except (WebhookVerificationError, UnicodeDecodeError, ValueError):
            continue
        try:
            event = json.loads(body)
        except ValueError:
            event = None
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise InvalidClerkWebhook("invalid_payload", "not a Clerk event")
        return event
    raise _refusal(secrets, body, wanted)


def _refusal(secrets: list[str], body: bytes, headers: Mapping[str, str]) -> InvalidClerkWebhook:
    """Why no secret verified the delivery. svix checks the timestamp before the signature
    and says which failed only in prose; a delivery whose signature is right (svix's own
    ``sign`` at its own timestamp) but whose timestamp is out of tolerance is stale, not
    forged: a retry that took too long, a replay, or a clock out of sync."""
    invalid = InvalidClerkWebhook("signature_invalid", "the signature does not match")
    try:
        stamp = int(headers["svix-timestamp"])
        text = body.decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return invalid
    skew = stamp - time.time()
    if abs(skew) <= SVIX_TOLERANCE_S:
        return invalid
    sent = [s.partition(",")[2] for s in headers["svix-signature"].split() if s.startswith("v1,")]
    signed_at = datetime.fromtimestamp(stamp, UTC)
    for secret in secrets:
        try:
            expected = Webhook(secret).sign(headers["svix-id"], signed_at, text).partition(",")[2]
        except ValueError:
            continue
        if any(hmac.compare_digest(expected, s) for s in sent):
            break
    else:
        return invalid
    if skew > 0:
        return InvalidClerkWebhook(
            "timestamp_too_new",
            f"the webhook's timestamp is {int(skew)} s in the future, beyond the "
            f"{SVIX_TOLERANCE_S} s tolerance: this server's clock is behind",
        )
    return InvalidClerkWebhook(
        "timestamp_too_old",
        f"the webhook is too old: signed {int(-skew)} s ago, beyond the {SVIX_TOLERANCE_S} s "
        "tolerance (a delayed retry, a replay, or this server's clock is ahead)",
    )


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
        first = (
            await uow.session.execute(
                sa.text(
                    "INSERT INTO clerk_webhooks (svix_id, type) VALUES (:id, :type) "
                    "ON CONFLICT (svix_id) DO NOTHING RETURNING svix_id"
                ),
                {"id": svix_id, "type": kind},
            )
        ).first()
        if first is None:
            return Outcome(svix_id, kind, duplicate=True)
        if kind in HANDLED and isinstance(user_id, str) and user_id:
            await uow.act_as(user_id)
            await _apply(uow, settings, kind, user_id, data)
        else:
            log.info("clerk.event_ignored", type=kind)
        await uow.commit()
    return Outcome(svix_id, kind, duplicate=False)


async def _erased_or_erasing(uow: UnitOfWork, settings: GatewaySettings, user_id: str) -> bool:
    if await erasure.find(uow, user_id) is not None:
        return True
    return await erasure.find_receipt(uow, erasure.subject_of(settings, user_id)) is not None


async def _apply(
    uow: UnitOfWork, settings: GatewaySettings, kind: str, user_id: str, data: Mapping[str, Any]
) -> None:
    if kind == "user.deleted":
        if await erasure.find_receipt(uow, erasure.subject_of(settings, user_id)) is not None:
            return  # erased already (we asked Clerk to delete the user: this is the echo)
        await erasure.request_erasure(uow, settings, user_id, source="clerk")
        return
    if await _erased_or_erasing(uow, settings, user_id):
        return
    updated = data.get("updated_at")
    await uow.session.execute(
        sa.text(
            "INSERT INTO accounts (user_id, email, first_name, last_name, image_url,"
            " clerk_updated_at) VALUES (:u, :email, :first, :last, :image, :at)"
            " ON CONFLICT (user_id) DO UPDATE SET email = EXCLUDED.email,"
            " first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name,"
            " image_url = EXCLUDED.image_url, clerk_updated_at = EXCLUDED.clerk_updated_at,"
            " updated_at = now() WHERE accounts.clerk_updated_at < EXCLUDED.clerk_updated_at"
        ),
        {
            "u": user_id,
            "email": _primary_email(data),
            "first": data.get("first_name"),
            "last": data.get("last_name"),
            "image": data.get("image_url"),
            "at": int(updated) if isinstance(updated, int | float) else 0,
        },
    )


async def profile(uow: UnitOfWork, user_id: str) -> dict[str, Any] | None:
    row = (
        await uow.session.execute(
            sa.text(
                "SELECT email, first_name, last_name, image_url FROM accounts WHERE user_id = :u"
            ),
            {"u": user_id},
        )
    ).first()
    return dict(row._mapping) if row is not None else None
