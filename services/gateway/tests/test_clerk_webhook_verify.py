"""Clerk's Svix signatures, checked with svix: a delivery signed right but stamped out of the
five minutes is refused as too old (or too new), never as a bad signature."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr
from svix.webhooks import Webhook

from visiona.gateway.config import GatewaySettings
from visiona.gateway.providers.clerk import InvalidClerkWebhook, verify

SECRET = "whsec_" + base64.b64encode(b"c" * 24).decode()
PREVIOUS = "whsec_" + base64.b64encode(b"p" * 24).decode()
OTHER = "whsec_" + base64.b64encode(b"o" * 24).decode()
BODY = json.dumps({"type": "user.created", "data": {"id": "user_1"}})
SETTINGS = GatewaySettings(
    clerk_webhook_secret=SecretStr(SECRET), clerk_webhook_previous_secret=SecretStr(PREVIOUS)
)


def headers(secret: str, at: datetime, msg_id: str = "msg_1") -> dict[str, str]:
    return {
        "svix-id": msg_id,
        "svix-timestamp": str(int(at.timestamp())),
        "svix-signature": Webhook(secret).sign(msg_id, at, BODY),
    }


def refusal(sent: dict[str, str], body: str = BODY) -> InvalidClerkWebhook:
    with pytest.raises(InvalidClerkWebhook) as caught:
        verify(SETTINGS, body.encode(), sent)
    return caught.value


def test_a_delivery_signed_now_with_either_secret_verifies() -> None:
    now = datetime.now(UTC)
    for secret in (SECRET, PREVIOUS):
        assert verify(SETTINGS, BODY.encode(), headers(secret, now))["type"] == "user.created"


@pytest.mark.parametrize("secret", [SECRET, PREVIOUS])
def test_a_well_signed_delivery_ten_minutes_old_is_too_old(secret: str) -> None:
    error = refusal(headers(secret, datetime.now(UTC) - timedelta(minutes=10)))
    assert error.code == "timestamp_too_old"
    assert "too old" in error.detail and "s ago" in error.detail


def test_a_well_signed_delivery_from_the_future_is_too_new() -> None:
    error = refusal(headers(SECRET, datetime.now(UTC) + timedelta(minutes=10)))
    assert error.code == "timestamp_too_new"


@pytest.mark.parametrize(
    "sent",
    [
        # Stale and forged: the signature is what is wrong.
        headers(OTHER, datetime.now(UTC) - timedelta(minutes=10)),
        # Stale, and the body changed since it was signed.
        headers(SECRET, datetime.now(UTC) - timedelta(minutes=10)) | {"svix-id": "msg_2"},
        # Fresh and forged.
        headers(OTHER, datetime.now(UTC)),
        # A timestamp that is no number.
        headers(SECRET, datetime.now(UTC)) | {"svix-timestamp": "yesterday"},
    ],
    ids=["stale-forged", "stale-tampered", "forged", "timestamp-garbage"],
)
def test_a_bad_signature_is_a_bad_signature_whatever_the_timestamp(
    sent: dict[str, str],
) -> None:
    assert refusal(sent).code == "signature_invalid"
