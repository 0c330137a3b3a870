"""``visiona-prompts serve|migrate``."""

from __future__ import annotations

from visiona.kit import migrations
from visiona.kit.runtime import Runtime, ServiceSpec, run_cli
from visiona.prompts.config import PromptsSettings
from visiona.prompts.v1 import prompts_pb2, prompts_pb2_grpc


async def setup(runtime: Runtime) -> None:
    # Imported here: the LLM SDK is slow to import and `migrate` does not need it.
    from visiona.prompts.grpc_api import PromptsServicer
    from visiona.prompts.llm import AnthropicEnhancer
    from visiona.prompts.service import PromptsService

    assert isinstance(runtime.settings, PromptsSettings)
    enhancer = AnthropicEnhancer(runtime.settings)
    runtime.closers.append(enhancer.close)
    service = PromptsService(runtime.db, enhancer)
    prompts_pb2_grpc.add_PromptsServiceServicer_to_server(PromptsServicer(service), runtime.server)


SPEC = ServiceSpec(
    name="prompts",
    settings_factory=PromptsSettings,
    migrations_dir=migrations.locate(__file__),
    grpc_services=[prompts_pb2.DESCRIPTOR.services_by_name["PromptsService"].full_name],
    setup=setup,
)


def main() -> None:
    run_cli(SPEC)


if __name__ == "__main__":
    main()
