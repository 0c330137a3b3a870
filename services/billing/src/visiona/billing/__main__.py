"""``visiona-billing serve|migrate``."""

from __future__ import annotations

from visiona.billing.account import (
    ACCOUNT_CONSUMER,
    AccountData,
    ErasureJobs,
    delete_expired_payments,
)
from visiona.billing.config import BillingSettings
from visiona.billing.consumers import (
    HANDLERS,
    HOLDS_CONSUMER,
    STRIPE_CONSUMER,
    USAGE_CONSUMER,
    HoldSaga,
    stripe_handlers,
)
from visiona.billing.domain.catalog import Catalog
from visiona.billing.grpc_api import BillingServicer
from visiona.billing.jobs import expire_due_holds, restage_open_events
from visiona.billing.providers.stripe import StripeSdk, WebhookVerifier
from visiona.billing.service import BillingService
from visiona.billing.v1 import billing_pb2, billing_pb2_grpc
from visiona.kit.runtime import Runtime, ServiceSpec, run_cli


async def setup(runtime: Runtime) -> None:
    settings = runtime.settings
    assert isinstance(settings, BillingSettings)
    catalog = Catalog.load(settings.catalog_file).with_hold_ttls(
        training_s=settings.hold_ttl_training_s, generation_s=settings.hold_ttl_generation_s
    )
    stripe = StripeSdk(settings)
    previous = settings.stripe_webhook_secret_previous
    verifier = WebhookVerifier(
        [
            settings.stripe_webhook_secret.get_secret_value(),
            previous.get_secret_value() if previous else "",
        ],
        settings.stripe_webhook_tolerance_s,
    )
    service = BillingService(runtime.db, catalog, stripe, settings)
    billing_pb2_grpc.add_BillingServiceServicer_to_server(
        BillingServicer(service, verifier), runtime.server
    )
    runtime.add_consumer(USAGE_CONSUMER, HANDLERS)
    runtime.add_consumer(HOLDS_CONSUMER, HoldSaga(catalog).handlers())
    runtime.add_consumer(STRIPE_CONSUMER, stripe_handlers(catalog, stripe))
    erasures = ErasureJobs(runtime.db, stripe, settings)
    runtime.add_consumer(
        ACCOUNT_CONSUMER, AccountData(runtime.storage, erasures, settings).handlers()
    )
    runtime.add_worker("billing-erasures", erasures.run)
    runtime.add_periodic(
        "hold-expiry",
        settings.hold_sweep_interval_s,
        lambda: expire_due_holds(runtime.db, settings.hold_sweep_batch),
    )
    runtime.add_periodic(
        "stripe-restage",
        settings.stripe_restage_interval_s,
        lambda: restage_open_events(runtime.db, settings.stripe_restage_after_s),
    )
    runtime.add_periodic(
        "retained-payments-expiry",
        settings.retention_sweep_interval_s,
        lambda: delete_expired_payments(runtime.db),
    )


SPEC = ServiceSpec("billing", BillingSettings, setup, proto=billing_pb2, package=__file__)


def main() -> None:
    run_cli(SPEC)


if __name__ == "__main__":
    main()
