"""Settings of the billing service (env prefix ``BILLING_``)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from visiona.kit.settings import ServiceSettings


class BillingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="BILLING_", extra="ignore", frozen=True)

    service_name: str = "billing"
    db_schema: str = "billing"
    grpc_port: int = 50054
