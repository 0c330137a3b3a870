"""``visiona-training serve|migrate``.

The training RPCs and consumers arrive with their issue; today the service runs its schema,
outbox relay and health reporting so the platform and its operators can depend on it.
"""

from __future__ import annotations

from visiona.kit import migrations
from visiona.kit.runtime import Runtime, ServiceSpec, run_cli
from visiona.training.config import TrainingSettings
from visiona.training.v1 import training_pb2


async def setup(runtime: Runtime) -> None:
    """Nothing to wire yet beyond what the kit runs for every service."""


SPEC = ServiceSpec(
    name="training",
    settings_factory=TrainingSettings,
    migrations_dir=migrations.locate(__file__),
    grpc_services=[training_pb2.DESCRIPTOR.services_by_name["TrainingService"].full_name],
    setup=setup,
)


def main() -> None:
    run_cli(SPEC)


if __name__ == "__main__":
    main()
