"""The SDK client for a service's settings, the webhook signing secrets, and the calls every
service's Replicate adapter makes the same way."""

from __future__ import annotations

from collections.abc import Awaitable, Collection
from typing import TypeVar

import httpx
from pydantic import Field, SecretStr
from replicate.client import Client
from replicate.exceptions import ReplicateError
from replicate.version import Versions

from visiona.kit import metrics
from visiona.kit.jobs import JobSettings
from visiona.kit.replicate.errors import wrap
from visiona.kit.settings import ServiceSettings

PROVIDER = "replicate"


def client(api_token: str, base_url: str | None) -> Client:
    """The official SDK's client: the real API, or an emulator by base URL."""
    return Client(api_token=api_token, base_url=base_url, timeout=httpx.Timeout(30.0, connect=5.0))


class WebhookSecrets:
    """The configured signing secrets (current, previous), else the account's default one,
    asked from the API once."""

    def __init__(self, sdk: Client, current: str, previous: str = "") -> None:
        self.sdk = sdk
        self._secrets = [s for s in (current, previous) if s]

    async def get(self) -> list[str]:
        if not self._secrets:
            try:
                with metrics.provider_call(PROVIDER, "webhooks.default.secret"):
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
    async def call(operation: str, request: Awaitable[T]) -> T:
        """The SDK's answer, or its failure as a :class:`ProviderError`; counted and timed
        as ``operation`` (a fixed name: ``trainings.create``)."""
        try:
            with metrics.provider_call(PROVIDER, operation):
                return await request
        except (ReplicateError, httpx.HTTPError) as exc:
            raise wrap(exc) from exc

    @staticmethod
    async def call_unless(
        operation: str, request: Awaitable[object], statuses: Collection[int]
    ) -> bool:
        """True when the call succeeded, False when Replicate answered one of ``statuses``
        (a state that is fine for the caller: already there, already over, gone). Counted as
        its answer was: one of those statuses is still a client_error."""
        try:
            with metrics.provider_call(PROVIDER, operation):
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
        return await self.call_unless(
            "versions.get", Versions(self.client, model).async_get(version_id), {404}
        )

    async def webhook_secrets(self) -> list[str]:
        return await self.secrets.get()
