"""Clerk, the identity provider: the one module that speaks its SDK (clerk-backend-api) and
verifies its webhooks (Svix).

- :func:`verify` checks a ``POST /webhooks/clerk`` body as received, with ``svix`` against the
  current and the previous secret (five minutes of tolerance); a well-signed delivery out of
  tolerance is refused as too old or too new, not as a bad signature;
- :class:`ClerkUsersPort` deletes a user's sign-in when the account's erasure finishes.

What the events mean for an account is visiona.gateway.account.accounts.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from visiona.gateway.config import GatewaySettings
from visiona.kit import metrics

# svix's tolerance on svix-timestamp, either way (standardwebhooks' own, not configurable).
SVIX_TOLERANCE_S = 300


class InvalidClerkWebhook(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


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
    # Here, not at the top: svix's package brings its whole API client (half a second of
    # every gateway's start) for the one class a webhook needs.
    from svix.webhooks import Webhook, WebhookVerificationError

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
    from svix.webhooks import Webhook  # as in verify()

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


class ClerkUsersPort:
    """Deletes a user at Clerk through the official SDK (clerk-backend-api)."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.server_url = settings.clerk_api_url
        self.secret = settings.clerk_secret_key

    @property
    def configured(self) -> bool:
        return self.secret is not None and bool(self.secret.get_secret_value())

    async def delete_user(self, user_id: str) -> bool:
        """Delete the user; False when Clerk has no such user (already deleted)."""
        # Imported when first needed: the SDK is large and most processes never call it.
        from clerk_backend_api import Clerk, models

        assert self.secret is not None
        async with Clerk(
            bearer_auth=self.secret.get_secret_value(), server_url=self.server_url
        ) as clerk:
            try:
                with metrics.provider_call("clerk", "users.delete"):
                    await clerk.users.delete_async(user_id=user_id, timeout_ms=15_000)
            except models.ClerkErrors as exc:
                if exc.raw_response.status_code == 404:
                    return False
                raise
        return True
