"""``visiona-prompts serve|migrate``."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from visiona.kit.runtime import Runtime, ServiceSpec, run_cli
from visiona.prompts.config import PromptsSettings
from visiona.prompts.consumers import ACCOUNT_CONSUMER, account_handlers
from visiona.prompts.grpc_api import PromptsServicer
from visiona.prompts.jobs import sweep_prompt_cache
from visiona.prompts.providers import language_model
from visiona.prompts.service import PromptsService
from visiona.prompts.v1 import prompts_pb2, prompts_pb2_grpc


async def setup(runtime: Runtime) -> None:
    settings = runtime.settings
    assert isinstance(settings, PromptsSettings)
    # The one place an LLM SDK is imported (only the configured one).
    llm = language_model(settings)
    runtime.closers.append(llm.close)
    service = PromptsService(
        runtime.db,
        llm,
        max_tokens=settings.llm_max_tokens,
        judge_max_tokens=settings.llm_judge_max_tokens,
        cache_ttl=timedelta(seconds=settings.prompt_cache_ttl_s),
    )
    runtime.add_periodic(
        "prompt-cache-sweep",
        settings.prompt_cache_sweep_interval_s,
        partial(sweep_prompt_cache, runtime.db),
    )
    prompts_pb2_grpc.add_PromptsServiceServicer_to_server(PromptsServicer(service), runtime.server)
    runtime.add_consumer(ACCOUNT_CONSUMER, account_handlers(runtime.storage))


SPEC = ServiceSpec("prompts", PromptsSettings, setup, proto=prompts_pb2, package=__file__)


def main() -> None:
    run_cli(SPEC)


if __name__ == "__main__":
    main()
