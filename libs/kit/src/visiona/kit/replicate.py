"""Replicate, shared by the services that use it (training, generation): errors, the SDK
client, and Standard Webhooks verification with the SDK.

Each service keeps its own small port and adapter for what it asks of Replicate; what is the
same for both lives here.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from replicate.client import Client
from replicate.exceptions import ReplicateError
from replicate.webhook import Webhooks, WebhookSigningSecret, WebhookValidationError


class ProviderError(Exception):
    """A provider call failed. ``permanent`` errors will not succeed when retried."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def permanent(self) -> bool:
        return self.status is not None and 400 <= self.status < 500 and self.status != 429


class InvalidWebhook(Exception):
    """A delivery whose signature, timestamp or body does not check out."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def client(api_token: str, base_url: str | None) -> Client:
    """The official SDK's client: the real API, or an emulator by base URL."""
    return Client(api_token=api_token, base_url=base_url, timeout=httpx.Timeout(30.0, connect=5.0))


def wrap(exc: Exception) -> ProviderError:
    if isinstance(exc, ReplicateError):
        return ProviderError(exc.detail or exc.title or "replicate error", status=exc.status)
    return ProviderError(f"replicate unreachable: {exc.__class__.__name__}")


class WebhookSecrets:
    """The configured signing secrets (current, previous), else the account's default one,
    asked from the API once."""

    def __init__(self, sdk: Client, current: str, previous: str = "") -> None:
        self.sdk = sdk
        self._secrets = [s for s in (current, previous) if s]

    async def get(self) -> list[str]:
        if not self._secrets:
            try:
                secret = await self.sdk.webhooks.default.async_secret()
            except (ReplicateError, httpx.HTTPError) as exc:
                raise wrap(exc) from exc
            self._secrets = [secret.key]
        return list(self._secrets)


def verify_webhook(
    secrets: list[str],
    *,
    webhook_id: str,
    timestamp: str,
    signature: str,
    body: bytes,
    tolerance_s: int,
) -> dict[str, Any]:
    """Check a Standard Webhooks signature with the SDK (any of ``secrets``, ``tolerance_s``
    on the timestamp) and return the decoded training or prediction object."""
    if not (webhook_id and timestamp and signature):
        raise InvalidWebhook("signature_missing", "webhook-id, -timestamp and -signature needed")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidWebhook("payload_invalid", "the body is not UTF-8") from None
    headers = {
        "webhook-id": webhook_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": signature,
    }
    last: Exception | None = None
    for secret in secrets:
        try:
            Webhooks.validate(
                headers=headers,
                body=text,
                secret=WebhookSigningSecret(key=secret),
                tolerance=tolerance_s,
            )
            break
        except (WebhookValidationError, ValueError) as exc:
            last = exc
    else:
        kind = type(last).__name__ if last else "InvalidSignatureError"
        code = "timestamp_out_of_tolerance" if "Timestamp" in kind else "signature_invalid"
        raise InvalidWebhook(code, "the webhook signature does not verify")
    try:
        data = json.loads(text)
    except ValueError:
        raise InvalidWebhook("payload_invalid", "the body is not JSON") from None
    if not isinstance(data, dict) or "id" not in data or "status" not in data:
        raise InvalidWebhook("payload_invalid", "the body is not a training or prediction")
    return data
