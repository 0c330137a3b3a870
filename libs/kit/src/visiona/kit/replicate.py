"""Replicate, shared by the services that use it (training, generation): errors, the SDK
client, and Standard Webhooks verification with the SDK.

Each service keeps its own small port and adapter for what it asks of Replicate; what is the
same for both lives here.
"""

from __future__ import annotations

import enum
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import sqlalchemy as sa
from replicate.client import Client
from replicate.exceptions import ReplicateError
from replicate.webhook import Webhooks, WebhookSigningSecret, WebhookValidationError

from visiona.kit.db import Database, UnitOfWork
from visiona.kit.errors import (
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    ResourceExhausted,
    Unavailable,
)
from visiona.kit.logging import get_logger

log = get_logger(__name__)


class Failure(enum.Enum):
    """What a failed Replicate call means (:data:`FAILURE_BY_STATUS`)."""

    UNAVAILABLE = "unavailable"  # no answer, a timeout, a 5xx: Replicate's trouble, retried
    RATE_LIMITED = "rate_limited"  # 429: retried later
    GONE = "gone"  # 404, 410: the version, training or prediction is no more
    INVALID = "invalid"  # 400, 413, 422 (and any other 4xx): the input is refused
    CONFLICT = "conflict"  # 409: not in a state that allows it (a finished job)
    NOT_CONFIGURED = "not_configured"  # 401, 402, 403: our token, account or its billing


# The SDK raises one class (ReplicateError) for every status: the status decides.
FAILURE_BY_STATUS: dict[int, Failure] = {
    400: Failure.INVALID,
    401: Failure.NOT_CONFIGURED,
    402: Failure.NOT_CONFIGURED,
    403: Failure.NOT_CONFIGURED,
    404: Failure.GONE,
    408: Failure.UNAVAILABLE,
    409: Failure.CONFLICT,
    410: Failure.GONE,
    413: Failure.INVALID,
    422: Failure.INVALID,
    429: Failure.RATE_LIMITED,
}

# For a call a request waits on (a webhook's signing secret): the status and stable code.
_DOMAIN_ERRORS: dict[Failure, tuple[type[DomainError], str, str]] = {
    Failure.UNAVAILABLE: (Unavailable, "replicate_unavailable", "Replicate is unavailable"),
    Failure.RATE_LIMITED: (
        ResourceExhausted,
        "replicate_rate_limited",
        "Replicate is rate limiting us; try again in a minute",
    ),
    Failure.GONE: (FailedPrecondition, "replicate_object_gone", "Replicate no longer has it"),
    Failure.INVALID: (InvalidArgument, "replicate_input_refused", "Replicate refused the input"),
    Failure.CONFLICT: (
        FailedPrecondition,
        "replicate_conflict",
        "Replicate's object is not in a state that allows it",
    ),
    Failure.NOT_CONFIGURED: (
        FailedPrecondition,
        "replicate_not_configured",
        "Replicate refused our credentials or account",
    ),
}


class ProviderError(Exception):
    """A provider call failed; ``failure`` says how (``status`` None: no answer at all).
    ``permanent`` errors will not succeed when retried."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def failure(self) -> Failure:
        if self.status is None or self.status >= 500:
            return Failure.UNAVAILABLE
        return FAILURE_BY_STATUS.get(self.status, Failure.INVALID)

    @property
    def permanent(self) -> bool:
        return self.failure not in (Failure.UNAVAILABLE, Failure.RATE_LIMITED)

    @property
    def gone(self) -> bool:
        """The object the call named is no more at Replicate (not merely unreachable)."""
        return self.failure is Failure.GONE

    def domain_error(self) -> DomainError:
        """This failure for a caller waiting on it (Replicate's detail stays out: it may
        quote the input)."""
        kind, code, message = _DOMAIN_ERRORS[self.failure]
        return kind(message, code=code)


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
    # The signature first, without the tolerance (the SDK checks the timestamp only when
    # given one, and before the signature), then the age: a stale delivery is told apart
    # from a forged one.
    for secret in secrets:
        try:
            Webhooks.validate(headers=headers, body=text, secret=WebhookSigningSecret(key=secret))
            break
        except (WebhookValidationError, ValueError):
            continue
    else:
        raise InvalidWebhook("signature_invalid", "the webhook signature does not verify")
    try:
        Webhooks.validate(
            headers=headers,
            body=text,
            secret=WebhookSigningSecret(key=secret),
            tolerance=tolerance_s,
        )
    except (WebhookValidationError, ValueError):
        raise _stale(timestamp, tolerance_s) from None
    try:
        data = json.loads(text)
    except ValueError:
        raise InvalidWebhook("payload_invalid", "the body is not JSON") from None
    if not isinstance(data, dict) or "id" not in data or "status" not in data:
        raise InvalidWebhook("payload_invalid", "the body is not a training or prediction")
    return data


def _stale(timestamp: str, tolerance_s: int) -> InvalidWebhook:
    """The refusal of a well-signed delivery whose timestamp is out of tolerance."""
    try:
        skew = int(timestamp) - time.time()
    except ValueError:
        return InvalidWebhook("timestamp_invalid", "the webhook timestamp is not a number")
    if skew > 0:
        return InvalidWebhook(
            "timestamp_too_new",
            f"webhook timestamp {int(skew)} s in the future, beyond the {tolerance_s} s "
            "tolerance: this server's clock is behind",
        )
    return InvalidWebhook(
        "timestamp_too_old",
        f"webhook too old: signed {int(-skew)} s ago, beyond the {tolerance_s} s tolerance "
        "(a replay, or this server's clock is ahead)",
    )


Apply = Callable[[UnitOfWork, uuid.UUID, dict[str, Any]], Awaitable[None]]


class WebhookInbox:
    """Replicate deliveries for one service: verified with the SDK (``tolerance_s`` on the
    timestamp, current and previous secret), recorded by ``webhook-id`` in the service's
    ``replicate_webhooks`` table (a retry or a replay changes nothing), and applied to the
    owner's row in the same transaction.

    ``table.id_column`` holds the provider's job id; ``apply(uow, row_id, payload)`` runs
    as the row's owner. Answering stays fast: slow work (copying files) is scheduled, not done.
    """

    def __init__(
        self,
        db: Database,
        secrets: Callable[[], Awaitable[list[str]]],
        *,
        table: str,
        id_column: str,
        tolerance_s: int,
        apply: Apply,
        wake: Callable[[], None],
    ) -> None:
        self.db = db
        self.secrets = secrets
        self.table = table
        self.id_column = id_column
        self.tolerance_s = tolerance_s
        self.apply = apply
        self.wake = wake

    async def ingest(
        self, *, payload: bytes, webhook_id: str, timestamp: str, signature: str
    ) -> bool:
        """True when the delivery was new; InvalidArgument when it does not verify."""
        try:
            secrets = await self.secrets()
        except ProviderError as exc:
            # Asking Replicate for the signing secret failed. Whatever the reason (even our
            # token), it is not the sender's fault: 503, so that Replicate delivers it again.
            log.warning("replicate.webhook_secret_unavailable", status=exc.status)
            raise Unavailable(
                "webhook signatures cannot be checked now", code=exc.domain_error().code
            ) from None
        try:
            data = verify_webhook(
                secrets,
                webhook_id=webhook_id,
                timestamp=timestamp,
                signature=signature,
                body=payload,
                tolerance_s=self.tolerance_s,
            )
        except InvalidWebhook as exc:
            log.warning("replicate.webhook_rejected", table=self.table, code=exc.code)
            raise InvalidArgument(str(exc), code=exc.code) from None
        provider_id, status = str(data["id"]), str(data["status"])
        async with self.db.uow(system=True) as uow:
            new = (
                await uow.session.execute(
                    sa.text(
                        "INSERT INTO replicate_webhooks (webhook_id, provider_id, status) "
                        "VALUES (:id, :pid, :status) ON CONFLICT DO NOTHING RETURNING 1"
                    ),
                    {"id": webhook_id[:200], "pid": provider_id, "status": status},
                )
            ).first() is not None
            if not new:
                return False
            found = (
                await uow.session.execute(
                    sa.text(f"SELECT id, user_id FROM {self.table} WHERE {self.id_column} = :pid"),
                    {"pid": provider_id},
                )
            ).first()
            if found is not None:
                await uow.act_as(found.user_id)
                await self.apply(uow, found.id, data)
            await uow.commit()
        log.info(
            "replicate.webhook_applied",
            table=self.table,
            provider_id=provider_id,
            status=status,
            matched=found is not None,
        )
        self.wake()
        return True


async def forget_old_webhooks(db: Database, older_than_days: int = 7) -> int:
    """Webhook ids are kept for dedup well past any retry schedule, then dropped."""
    async with db.single_statement() as conn:
        cur = await conn.execute(
            "DELETE FROM replicate_webhooks WHERE received_at < now() - make_interval(days => %s)",
            (older_than_days,),
        )
        return cur.rowcount or 0
