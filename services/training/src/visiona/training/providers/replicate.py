"""Replicate behind a small port: destination models, trainings, webhook signatures.

What the provider says about a training is a domain value
(:class:`visiona.training.domain.model.ProviderTraining`): the model applies it.

The one adapter is the official ``replicate`` SDK (async methods), pointed at the real API
with a token or at the local emulator by base URL. POSTs are never retried by the SDK, so
:meth:`ReplicateSdk.find_training` lets the service adopt a training whose creation answer
was lost instead of starting a second one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from replicate.version import Versions

from visiona.kit.replicate import ReplicateAdapter
from visiona.training.config import TrainingSettings
from visiona.training.domain.model import ProviderTraining


class ReplicatePort(Protocol):
    async def ensure_model(self, name: str) -> str: ...

    async def start_training(
        self, *, destination: str, inputs: Mapping[str, Any], webhook: str
    ) -> ProviderTraining: ...

    async def find_training(self, destination: str) -> ProviderTraining | None: ...

    async def get_training(self, training_id: str) -> ProviderTraining: ...

    async def cancel_training(self, training_id: str) -> None: ...

    async def delete_model(self, destination: str) -> None: ...

    async def version_exists(self, version: str) -> bool: ...

    async def webhook_secrets(self) -> list[str]: ...


class ReplicateSdk(ReplicateAdapter):
    def __init__(self, settings: TrainingSettings) -> None:
        super().__init__(settings)
        self.settings = settings

    async def ensure_model(self, name: str) -> str:
        """Create the private destination model ``owner/name``; one that exists is fine."""
        owner = self.settings.replicate_owner
        created = self.client.models.async_create(
            owner=owner,
            name=name,
            visibility="private",
            hardware=self.settings.replicate_hardware,
            description="Visiona personal LoRA model",
        )
        await self.call_unless("models.create", created, {409})
        return f"{owner}/{name}"

    async def start_training(
        self, *, destination: str, inputs: Mapping[str, Any], webhook: str
    ) -> ProviderTraining:
        training = await self.call(
            "trainings.create",
            self.client.trainings.async_create(
                model=self.settings.replicate_trainer,
                version=self.settings.replicate_trainer_version,
                input=dict(inputs),
                destination=destination,
                webhook=webhook,
                webhook_events_filter=["start", "completed"],
            ),
        )
        return ProviderTraining.from_payload(training.dict())

    async def find_training(self, destination: str) -> ProviderTraining | None:
        """The newest training into ``destination`` that is not over, from the first pages."""
        page = await self.call("trainings.list", self.client.trainings.async_list())
        for _ in range(5):
            for training in page.results:
                if training.destination == destination and training.status not in (
                    "failed",
                    "canceled",
                ):
                    return ProviderTraining.from_payload(training.dict())
            if not page.next:
                return None
            page = await self.call(
                "trainings.list", self.client.trainings.async_list(cursor=page.next)
            )
        return None

    async def get_training(self, training_id: str) -> ProviderTraining:
        training = await self.call("trainings.get", self.client.trainings.async_get(training_id))
        return ProviderTraining.from_payload(training.dict())

    async def cancel_training(self, training_id: str) -> None:
        # Already finished (or gone): nothing left to stop.
        await self.call_unless(
            "trainings.cancel", self.client.trainings.async_cancel(training_id), {404, 409, 422}
        )

    async def delete_model(self, destination: str) -> None:
        """Delete every version of ``destination``, then the model; a missing one is fine."""
        await self.call_unless("models.delete", self._delete_model(destination), {404})

    async def _delete_model(self, destination: str) -> None:
        versions = Versions(self.client, destination)
        while True:
            page = await versions.async_list()
            if not page.results:
                break
            for version in page.results:
                await versions.async_delete(version.id)
        owner, name = destination.split("/", 1)
        await self.client.models.async_delete(f"{owner}/{name}")
