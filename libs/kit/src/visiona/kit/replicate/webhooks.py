"""Replicate's webhooks: Standard Webhooks verification with the SDK, the inbox that records
each delivery once and applies it to the job's row, and the RPC the gateway relays them to."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from replicate.webhook import Webhooks, WebhookSigningSecret, WebhookValidationError

from visiona.kit.db import Database, UnitOfWork
from visiona.kit.errors import (
    InvalidArgument,
    Unavailable,
)
from visiona.kit.grpcserver import require_system
from visiona.kit.jobs import JobRow, RowJobs
from visiona.kit.logging import get_logger
from visiona.kit.replicate.adapter import ReplicateServiceSettings
from visiona.kit.replicate.errors import InvalidWebhook, ProviderError

log = get_logger(__name__)


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


@dataclass(eq=False)
class WebhookInbox:
    """Replicate deliveries for one service: verified with the SDK (``tolerance_s`` on the
    timestamp, current and previous secret), recorded by ``webhook-id`` in the service's
    ``replicate_webhooks`` table (a retry or a replay changes nothing), and applied to the
    owner's row in the same transaction.

    ``table.id_column`` holds the provider's job id; ``apply(uow, row_id, payload)`` runs
    as the row's owner. Answering stays fast: slow work (copying files) is scheduled, not done.
    """

    db: Database
    secrets: Callable[[], Awaitable[list[str]]]
    _: KW_ONLY
    table: str
    id_column: str
    tolerance_s: int
    apply: Apply
    wake: Callable[[], None]

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


R = TypeVar("R", bound=JobRow)


def job_webhooks(
    db: Database,
    secrets: Callable[[], Awaitable[list[str]]],
    jobs: RowJobs[R],
    settings: ReplicateServiceSettings,
    *,
    id_column: str,
    heard: Callable[[R, dict[str, Any], datetime], object],
) -> WebhookInbox:
    """Replicate's deliveries about a service's jobs: ``heard(row, payload, now)`` applies one
    to the row whose ``id_column`` names the provider's job (locked, in the delivery's
    transaction), saved like any transition (:meth:`RowJobs.record`); the jobs' worker is
    woken after."""

    async def apply(uow: UnitOfWork, row_id: uuid.UUID, data: dict[str, Any]) -> None:
        row = await jobs.load(uow, row_id, lock=True)
        if row is not None:
            heard(row, data, datetime.now(UTC))
            await jobs.record(uow, row)

    return WebhookInbox(
        db,
        secrets,
        table=jobs.table,
        id_column=id_column,
        tolerance_s=settings.replicate_webhook_tolerance_s,
        apply=apply,
        wake=jobs.wake,
    )


class WebhookIngestRpc:
    """The ``IngestReplicateWebhook`` RPC of a service that takes Replicate's deliveries (the
    gateway relays them, as the system): a servicer mixin; ``webhook_response`` is the
    service's generated response message."""

    webhooks: WebhookInbox
    webhook_response: Callable[..., Any]

    async def IngestReplicateWebhook(self, request: Any, context: Any) -> Any:
        require_system()
        new = await self.webhooks.ingest(
            payload=request.payload,
            webhook_id=request.webhook_id,
            timestamp=request.webhook_timestamp,
            signature=request.webhook_signature,
        )
        return self.webhook_response(webhook_id=request.webhook_id, duplicate=not new)


async def forget_old_webhooks(db: Database, older_than_days: int = 7) -> int:
    """Webhook ids are kept for dedup well past any retry schedule, then dropped."""
    async with db.single_statement() as conn:
        cur = await conn.execute(
            "DELETE FROM replicate_webhooks WHERE received_at < now() - make_interval(days => %s)",
            (older_than_days,),
        )
        return cur.rowcount or 0
