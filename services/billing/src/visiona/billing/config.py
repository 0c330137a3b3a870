"""Settings of the billing service (env prefix ``BILLING_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from visiona.kit.settings import ServiceSettings


class BillingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="BILLING_", extra="ignore", frozen=True)

    service_name: str = "billing"
    db_schema: str = "billing"
    grpc_port: int = 50054
    metrics_port: int = 9464

    # Packs, plans, job prices and plan limits; None means the catalogue shipped with the
    # service (domain/catalog.toml).
    catalog_file: Path | None = None

    stripe_api_key: SecretStr = SecretStr("")
    # None means the real API; locally the Stripe emulator's address.
    stripe_api_base: str | None = None
    stripe_max_network_retries: int = 2
    # Signing secret of the webhook endpoint; during a rotation the old one is accepted too.
    stripe_webhook_secret: SecretStr = SecretStr("")
    stripe_webhook_secret_previous: SecretStr | None = None
    stripe_webhook_tolerance_s: int = 300

    # Where Stripe sends the browser back. Fixed by configuration, never taken from a request.
    checkout_success_url: str = (
        "http://localhost:8000/billing/success?session_id={CHECKOUT_SESSION_ID}"
    )
    checkout_cancel_url: str = "http://localhost:8000/billing/canceled"
    portal_return_url: str = "http://localhost:8000/billing"

    # Stored Stripe events still open this long after staging are staged again.
    stripe_restage_after_s: float = 600.0
    stripe_restage_interval_s: float = 60.0

    # How long a job's credit hold lasts before it releases itself, by job kind; unset, the
    # catalogue's `hold_ttl_s` (a fault test shortens them without a catalogue of its own).
    hold_ttl_training_s: int | None = Field(default=None, gt=0)
    hold_ttl_generation_s: int | None = Field(default=None, gt=0)
    hold_sweep_interval_s: float = 15.0
    hold_sweep_batch: int = 200

    # An erased user's payments are kept, anonymised, this long for the accounting and tax
    # records the law requires (the period depends on the jurisdiction: set it), then deleted.
    accounting_retention_days: int = Field(default=3653, ge=1)
    retention_sweep_interval_s: float = 6 * 3600.0
    # The erasure worker (deleting the Stripe customer): see visiona.kit.jobs.RowJobs.
    erasure_poll_interval_s: float = 1.0
    erasure_lease_s: float = 60.0
