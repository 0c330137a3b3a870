"""``visiona-generation serve|migrate``.

The generation RPCs and consumers arrive with their issue; today the service runs its schema,
outbox relay and health reporting so the platform and its operators can depend on it.
"""

from __future__ import annotations

from visiona.generation.config import GenerationSettings
from visiona.generation.v1 import generation_pb2
from visiona.kit import migrations
from visiona.kit.runtime import Runtime, ServiceSpec, run_cli


async def setup(runtime: Runtime) -> None:
    """Nothing to wire yet beyond what the kit runs for every service."""


SPEC = ServiceSpec(
    name="generation",
    settings_factory=GenerationSettings,
    migrations_dir=migrations.locate(__file__),
    grpc_services=[generation_pb2.DESCRIPTOR.services_by_name["GenerationService"].full_name],
    setup=setup,
)


def main() -> None:
    run_cli(SPEC)


if __name__ == "__main__":
    main()
