"""Replicate predictions behind a small port, on the official SDK (shared pieces in the kit)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from visiona.generation.domain.generation import output_urls
from visiona.kit.replicate import ReplicateAdapter


@dataclass(frozen=True)
class ProviderPrediction:
    id: str
    status: str
    version: str | None = None
    prompt: str | None = None
    outputs: list[str] = field(default_factory=list)
    error: str | None = None
    created_at: str | None = None

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> ProviderPrediction:
        inputs = data.get("input") if isinstance(data.get("input"), Mapping) else {}
        assert isinstance(inputs, Mapping)
        return cls(
            id=str(data["id"]),
            status=str(data["status"]),
            version=str(data["version"]) if data.get("version") else None,
            prompt=str(inputs["prompt"]) if inputs.get("prompt") else None,
            outputs=output_urls(data.get("output")),
            error=str(data["error"]) if data.get("error") else None,
            created_at=str(data["created_at"]) if data.get("created_at") else None,
        )


class PredictionsPort(Protocol):
    async def start(
        self, *, version: str, inputs: Mapping[str, Any], webhook: str
    ) -> ProviderPrediction: ...

    async def find(
        self, *, version: str, prompt: str, since: datetime
    ) -> ProviderPrediction | None: ...

    async def get(self, prediction_id: str) -> ProviderPrediction: ...

    async def cancel(self, prediction_id: str) -> None: ...

    async def version_exists(self, version: str) -> bool: ...

    async def webhook_secrets(self) -> list[str]: ...


def first_lost(
    listed: Iterable[ProviderPrediction], *, version: str, prompt: str, since: datetime
) -> ProviderPrediction | None:
    """The first of ``listed`` (newest first, as the provider lists them) that is the one an
    attempt at ``since`` started: same version and prompt, created in the attempt's second or
    later (the provider's clock may be a little behind ours)."""
    for found in listed:
        created = _parse_time(found.created_at)
        if (
            found.version == version
            and found.prompt == prompt
            and (created is None or created >= since.replace(microsecond=0))
        ):
            return found
    return None


class ReplicatePredictions(ReplicateAdapter):
    async def start(
        self, *, version: str, inputs: Mapping[str, Any], webhook: str
    ) -> ProviderPrediction:
        prediction = await self.call(
            "predictions.create",
            self.client.predictions.async_create(
                version=version,
                input=dict(inputs),
                webhook=webhook,
                webhook_events_filter=["start", "completed"],
            ),
        )
        return ProviderPrediction.from_payload(prediction.dict())

    async def find(
        self, *, version: str, prompt: str, since: datetime
    ) -> ProviderPrediction | None:
        """A prediction we started but never heard the answer of: same version and prompt,
        created after our attempt, among the newest ones."""
        page = await self.call("predictions.list", self.client.predictions.async_list())
        listed = (ProviderPrediction.from_payload(p.dict()) for p in page.results)
        return first_lost(listed, version=version, prompt=prompt, since=since)

    async def get(self, prediction_id: str) -> ProviderPrediction:
        prediction = await self.call(
            "predictions.get", self.client.predictions.async_get(prediction_id)
        )
        return ProviderPrediction.from_payload(prediction.dict())

    async def cancel(self, prediction_id: str) -> None:
        # Already finished (or gone): nothing left to stop.
        await self.call_unless(
            "predictions.cancel",
            self.client.predictions.async_cancel(prediction_id),
            {404, 409, 422},
        )


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
