"""``BACKUP_*`` settings, read like the services' (pydantic-settings; flags override)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from visiona.kit.storage import server_side_encryption


class BackupSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BACKUP_", extra="ignore", frozen=True)

    # libpq URL of the role that dumps (BYPASSRLS + pg_read_all_data, never an app role) and,
    # for a restore, of a role that may create databases and roles (the server's admin).
    database_url: SecretStr = SecretStr("postgresql://postgres@127.0.0.1:5432/visiona")
    s3_endpoint: str = "127.0.0.1:8333"
    s3_access_key: SecretStr = SecretStr("")
    s3_secret_key: SecretStr = SecretStr("")
    s3_region: str = "us-east-1"
    s3_secure: bool = False
    # Where dumps, object copies and the erasure journal go.
    bucket: str = "visiona-backups"
    # The app bucket the services write (what a backup copies).
    source_bucket: str = "visiona"
    # Every object the tool writes asks for server-side encryption, like the services' s3_sse.
    s3_sse: Literal["none", "s3", "kms"] = "s3"
    s3_sse_kms_key_id: str | None = None
    retention_days: int = Field(default=30, ge=1)
    # Objects of the app bucket a backup does not copy: export archives are made again on
    # request and live for days; copying them would keep a user's bundle for 30 more.
    skip_prefixes: tuple[str, ...] = ("exports/",)
    # The gateway's GATEWAY_PSEUDONYM_KEY: a restore needs it to find the users the erasure
    # journal names (it holds keyed hashes of user ids, never the ids).
    pseudonym_key: SecretStr = SecretStr("")

    @model_validator(mode="after")
    def _sse_is_complete(self) -> Self:
        server_side_encryption(self.s3_sse, self.s3_sse_kms_key_id)  # raises when incomplete
        if self.s3_sse == "kms" and not self.s3_secure:
            raise ValueError("BACKUP_S3_SSE=kms needs BACKUP_S3_SECURE=true")
        return self
