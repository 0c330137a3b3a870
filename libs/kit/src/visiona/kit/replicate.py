"""Replicate, shared by the services that use it (training, generation): errors, the SDK
client, and Standard Webhooks verification with the SDK.

Each service keeps its own small port and adapter for what it asks of Replicate (a
:class:`ReplicateAdapter`); what is the same for both lives here: the SDK client and the
webhook secrets from the service's settings (:class:`ReplicateServiceSettings`), the calls'
error handling, a version's existence, and the webhook inbox with its RPC
(:class:`WebhookIngestRpc`).
"""

from __future__ import annotations

import enum
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Collection
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import httpx
import sqlalchemy as sa
from pydantic import Field, SecretStr
from replicate.client import Client
from replicate.exceptions import ReplicateError
from replicate.version import Versions
from replicate.webhook import Webhooks, WebhookSigningSecret, WebhookValidationError

from visiona.kit.credits import CreditsParticipant
from visiona.kit.db import Database, UnitOfWork
from visiona.kit.errors import (
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    ResourceExhausted,
    Unavailable,
)
from visiona.kit.grpcserver import require_system
from visiona.kit.jobs import JobRow, JobSettings, RowJobs
from visiona.kit.logging import get_logger
from visiona.kit.owners import LegacyRows
from visiona.kit.runtime import Runtime
from visiona.kit.settings import ServiceSettings
from visiona.kit.storage import Storage

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


class ReplicateServiceSettings(ServiceSettings):
    """A back service whose paid jobs run at Replicate (training, generation): the account,
    the webhooks, the jobs' rows (visiona.kit.jobs) and the move of legacy object keys. The
    service's class sets its env prefix and may change a default."""

    # Replicate: the real API with a token, or the local emulator by base URL.
    replicate_api_token: SecretStr = SecretStr("")
    replicate_base_url: str | None = None
    # Signing secret of Replicate's webhooks; empty means ask the API once
    # (GET /v1/webhooks/default/secret). During a rotation the previous one is accepted too.
    replicate_webhook_secret: SecretStr = SecretStr("")
    replicate_webhook_secret_previous: SecretStr | None = None
    replicate_webhook_tolerance_s: int = 300
    # The gateway's public base URL: Replicate posts to <this>/webhooks/replicate.
    public_webhook_base_url: str = "http://127.0.0.1:8000"

    # Background work on the jobs' rows.
    work_poll_interval_s: float = 1.0
    work_batch: int = 8
    # A step's claim, renewed while it runs: a crashed worker's steps resume after this.
    work_lease_s: float = 60.0
    work_max_attempts: int = 8
    # A running job with no news for this long is asked about (lost webhooks).
    reconcile_quiet_s: float = 30.0
    # A job still awaiting credits this long after it asked billing asks again (the request
    # or billing's answer was lost or dead-lettered); billing holds once per job and answers
    # a repeated request the same.
    credits_ask_again_s: float = Field(default=60.0, gt=0)

    # Objects stored before owner keys (visiona.kit.owners) are moved to them: this often,
    # this many users at a time, until none is left.
    legacy_keys_interval_s: float = Field(default=60.0, gt=0)
    legacy_keys_batch: int = Field(default=20, ge=1)

    def job_settings(self) -> JobSettings:
        """How every row-job of the service claims and retries (its jobs, erasures, exports)."""
        return JobSettings(
            poll_interval_s=self.work_poll_interval_s,
            batch=self.work_batch,
            lease_s=self.work_lease_s,
            max_attempts=self.work_max_attempts,
        )


T = TypeVar("T")


class ReplicateAdapter:
    """The SDK's client and the webhook secrets for a service's settings, and the calls every
    adapter makes the same way; a service's adapter adds what it asks of Replicate."""

    def __init__(self, settings: ReplicateServiceSettings) -> None:
        self.client = client(
            settings.replicate_api_token.get_secret_value(), settings.replicate_base_url
        )
        previous = settings.replicate_webhook_secret_previous
        self.secrets = WebhookSecrets(
            self.client,
            settings.replicate_webhook_secret.get_secret_value(),
            previous.get_secret_value() if previous else "",
        )

    @staticmethod
    async def call(request: Awaitable[T]) -> T:
        """The SDK's answer, or its failure as a :class:`ProviderError`."""
        try:
            return await request
        except (ReplicateError, httpx.HTTPError) as exc:
            raise wrap(exc) from exc

    @staticmethod
    async def call_unless(request: Awaitable[object], statuses: Collection[int]) -> bool:
        """True when the call succeeded, False when Replicate answered one of ``statuses``
        (a state that is fine for the caller: already there, already over, gone)."""
        try:
            await request
        except ReplicateError as exc:
            if exc.status not in statuses:
                raise wrap(exc) from exc
            return False
        except httpx.HTTPError as exc:
            raise wrap(exc) from exc
        return True

    async def version_exists(self, version: str) -> bool:
        """Whether the provider still has ``owner/name:id`` (False only on its 404)."""
        model, _, version_id = version.partition(":")
        return await self.call_unless(Versions(self.client, model).async_get(version_id), {404})

    async def webhook_secrets(self) -> list[str]:
        return await self.secrets.get()


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


R = TypeVar("R", bound=JobRow)
P = TypeVar("P")


class ReplicateJobs(RowJobs[R], Generic[R, P]):
    """A service's paid jobs at Replicate as row-jobs: the storage their files go to, the
    service's Replicate port (``provider``), its settings (their job timings) and an HTTP
    client for the provider's files. A provider error is permanent as it says."""

    settings: ReplicateServiceSettings

    def __init__(
        self,
        db: Database,
        storage: Storage,
        provider: P,
        settings: ReplicateServiceSettings,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(db, settings.job_settings())
        self.storage = storage
        self.provider = provider
        self.settings = settings
        self.http = http or httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=10.0))

    async def close(self) -> None:
        await self.http.aclose()

    def permanent(self, error: BaseException) -> bool:
        return isinstance(error, ProviderError) and error.permanent


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


def run_paid_jobs(
    runtime: Runtime,
    jobs: ReplicateJobs[Any, Any],
    *,
    worker: str,
    credits_consumer: str,
    credits: CreditsParticipant[Any],
    legacy: LegacyRows,
) -> None:
    """What a service whose paid jobs run at Replicate runs beside its own work: billing's
    answers about the jobs' credits, the jobs' worker, the expiry of webhook ids and the move
    of legacy object keys; the jobs' HTTP client is closed at stop."""
    settings = jobs.settings
    runtime.add_consumer(credits_consumer, credits.handlers())
    runtime.add_worker(worker, jobs.run)
    runtime.add_periodic("webhook-ids", 3600.0, lambda: forget_old_webhooks(runtime.db))
    moves = legacy.job(settings.legacy_keys_batch)
    runtime.add_periodic("legacy-keys", settings.legacy_keys_interval_s, moves.run_once)
    runtime.closers.append(jobs.close)
