"""``visiona-billing serve|migrate``."""

from __future__ import annotations

from visiona.billing.config import BillingSettings
from visiona.billing.consumers import HANDLERS, USAGE_CONSUMER
from visiona.billing.grpc_api import BillingServicer
from visiona.billing.service import BillingService
from visiona.billing.v1 import billing_pb2, billing_pb2_grpc
from visiona.kit import migrations
from visiona.kit.runtime import Runtime, ServiceSpec, run_cli


async def setup(runtime: Runtime) -> None:
    billing_pb2_grpc.add_BillingServiceServicer_to_server(
        BillingServicer(BillingService(runtime.db)), runtime.server
    )
    runtime.add_consumer(USAGE_CONSUMER, HANDLERS)


SPEC = ServiceSpec(
    name="billing",
    settings_factory=BillingSettings,
    migrations_dir=migrations.locate(__file__),
    grpc_services=[billing_pb2.DESCRIPTOR.services_by_name["BillingService"].full_name],
    setup=setup,
)


def main() -> None:
    run_cli(SPEC)


if __name__ == "__main__":
    main()
