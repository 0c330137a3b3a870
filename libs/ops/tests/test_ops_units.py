"""visiona-ops without servers: the erasure journal's pseudonym, backup names, settings."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import SecretStr, ValidationError

from visiona.gateway.config import GatewaySettings
from visiona.gateway.edge.pseudonyms import Pseudonyms
from visiona.ops.erasures import subject_of
from visiona.ops.settings import BackupSettings
from visiona.ops.store import parse_stamp, stamp


def test_the_journal_pseudonym_is_the_one_the_gateway_writes() -> None:
    key = "k" * 40
    gateway = Pseudonyms.from_settings(GatewaySettings(pseudonym_key=SecretStr(key)))
    for user in ("user_alice", "user_2x9Q", "ünïcode"):
        assert subject_of(key.encode(), user) == gateway.of("subject", user)
    assert subject_of(key.encode(), "user_a") != subject_of(b"x" * 40, "user_a")


def test_backup_names_sort_as_their_times() -> None:
    times = [datetime(2026, 12, d, h, 5, 9, tzinfo=UTC) for d, h in ((9, 1), (10, 23), (11, 0))]
    names = [stamp(t) for t in times]
    assert names == sorted(names) and names[0] == "20261209T010509Z"
    assert [parse_stamp(n) for n in names] == times


def test_kms_needs_a_key_and_tls() -> None:
    with pytest.raises(ValidationError):
        BackupSettings(s3_sse="kms")
    with pytest.raises(ValidationError):
        BackupSettings(s3_sse="kms", s3_sse_kms_key_id="alias/backups")
    assert BackupSettings(s3_sse="kms", s3_sse_kms_key_id="k", s3_secure=True).s3_sse == "kms"
    assert BackupSettings().retention_days == 30
