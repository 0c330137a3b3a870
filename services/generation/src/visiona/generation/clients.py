"""The questions generation asks other services over gRPC before it accepts a generation:
is the model the caller's and ready (training), is the prompt allowed and what is it finally
(prompts), how many generations may run at once (billing).

Each call carries an internal token this service mints (iss ``generation``) for the user whose
CreateGeneration it is serving; see visiona.kit.internal_token for who may mint what."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import grpc

from visiona.billing.v1 import billing_pb2, billing_pb2_grpc
from visiona.generation.config import GenerationSettings
from visiona.kit import protoenum
from visiona.kit.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from visiona.kit.grpcserver import ERROR_CODE_KEY, INTERNAL_TOKEN_KEY
from visiona.kit.internal_token import Minter
from visiona.kit.metrics import grpcclient
from visiona.kit.telemetry import inject_headers
from visiona.prompts.v1 import prompts_pb2, prompts_pb2_grpc
from visiona.training.v1 import training_pb2, training_pb2_grpc


@dataclass(frozen=True)
class ReadyModel:
    id: str
    version: str
    trigger_word: str


@dataclass(frozen=True)
class PreparedPrompt:
    prompt: str
    enhanced: bool
    degraded: bool
    refused: bool
    refusal_reason: str
    refusal_message: str
    reason: str


class BackendsPort(Protocol):
    async def ready_model(self, user_id: str, model_id: str) -> ReadyModel: ...

    async def prepare_prompt(
        self, user_id: str, *, prompt: str, trigger_word: str, style_pack: str | None, enhance: bool
    ) -> PreparedPrompt: ...

    async def max_concurrent_generations(self, user_id: str) -> int: ...


def _code(exc: grpc.aio.AioRpcError, default: str) -> str:
    for key, value in exc.trailing_metadata() or ():
        if key == ERROR_CODE_KEY:
            return value.decode() if isinstance(value, bytes) else str(value)
    return default


class GrpcBackends:
    def __init__(self, settings: GenerationSettings) -> None:
        self.settings = settings
        self.minter = Minter.from_settings(settings)
        self.channels = [
            grpcclient.insecure_channel(addr)
            for addr in (settings.training_addr, settings.prompts_addr, settings.billing_addr)
        ]
        self.training = training_pb2_grpc.TrainingServiceStub(self.channels[0])
        self.prompts = prompts_pb2_grpc.PromptsServiceStub(self.channels[1])
        self.billing = billing_pb2_grpc.BillingServiceStub(self.channels[2])

    def _call(self, user_id: str, deadline_s: float | None = None) -> dict[str, Any]:
        return {
            "timeout": deadline_s or self.settings.backend_deadline_s,
            "metadata": (
                *inject_headers().items(),
                (INTERNAL_TOKEN_KEY, self.minter.token(user_id)),
            ),
        }

    async def ready_model(self, user_id: str, model_id: str) -> ReadyModel:
        try:
            r = await self.training.GetModel(
                training_pb2.GetModelRequest(model_id=model_id), **self._call(user_id)
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound(f"no model {model_id}", code="model_not_found") from None
            raise Unavailable(
                "models are unavailable right now", code="training_unavailable"
            ) from exc
        model = r.model
        if model.status == training_pb2.MODEL_STATUS_UNAVAILABLE:
            raise FailedPrecondition(
                model.failure_message
                or "the model's trained version is no longer available; train it again",
                code="model_unavailable",
            )
        if model.status != training_pb2.MODEL_STATUS_SUCCEEDED or not model.version:
            status = protoenum.to_string(training_pb2.ModelStatus, model.status)
            raise FailedPrecondition(
                f"the model is {status}; it can generate once its training succeeded",
                code="model_not_ready",
            )
        return ReadyModel(model.id, model.version, model.trigger_word)

    async def prepare_prompt(
        self, user_id: str, *, prompt: str, trigger_word: str, style_pack: str | None, enhance: bool
    ) -> PreparedPrompt:
        try:
            r = await self.prompts.PreparePrompt(
                prompts_pb2.PreparePromptRequest(
                    prompt=prompt,
                    trigger_word=trigger_word,
                    style_pack=style_pack or "",
                    enhance=enhance,
                ),
                **self._call(user_id, self.settings.prompts_deadline_s),
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                # An unknown pack is a bad value in the request (422), not a missing resource.
                raise InvalidArgument(
                    exc.details() or "no such style pack", code=_code(exc, "style_pack_not_found")
                ) from None
            if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidArgument(
                    exc.details() or "invalid prompt", code=_code(exc, "prompt_invalid")
                ) from None
            raise Unavailable(
                "prompt checks are unavailable right now; nothing was charged",
                code="prompts_unavailable",
            ) from exc
        return PreparedPrompt(
            prompt=r.prompt,
            enhanced=r.enhanced,
            degraded=r.degraded,
            refused=r.refused,
            refusal_reason=r.refusal_reason,
            refusal_message=r.refusal_message,
            reason=r.reason,
        )

    async def max_concurrent_generations(self, user_id: str) -> int:
        try:
            r = await self.billing.GetEntitlements(
                billing_pb2.GetEntitlementsRequest(), **self._call(user_id)
            )
        except grpc.aio.AioRpcError as exc:
            raise Unavailable(
                "plan limits are unavailable right now", code="billing_unavailable"
            ) from exc
        return int(r.limits.max_concurrent_generations)

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close()
