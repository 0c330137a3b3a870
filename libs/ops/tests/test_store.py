"""The backup bucket on a real S3 (the session's SeaweedFS): lifecycle rule, pruning, names,
encryption."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from visiona.emulators.stack import S3Config
from visiona.ops.settings import BackupSettings
from visiona.ops.store import Buckets


@pytest.fixture
def buckets(s3: S3Config) -> Iterator[Buckets]:
    settings = BackupSettings(
        s3_endpoint=s3.endpoint,
        s3_access_key=s3.access_key,
        s3_secret_key=s3.secret_key,
        bucket=f"backups-{uuid.uuid4().hex[:10]}",
    )
    store = Buckets.from_settings(settings)
    store.ensure(settings.bucket)
    try:
        yield store
    finally:
        store.remove_bucket(settings.bucket)


def test_seaweedfs_takes_the_lifecycle_rule(buckets: Buckets) -> None:
    assert buckets.ensure_lifecycle(30)
    rules = {
        r.rule_filter.prefix: r.expiration.days
        for r in buckets.s3.get_bucket_lifecycle(buckets.backups).rules
    }
    assert rules == {"dumps/": 30, "erasures/": 31}


def test_prune_keeps_the_window_and_the_journal_a_day_longer(buckets: Buckets) -> None:
    for name in ("20261001T000000Z", "20261108T000000Z", "20261201T000000Z"):
        buckets.put_json(f"dumps/{name}/manifest.json", {})
        buckets.put_json(f"dumps/{name}/objects/images/a.webp", {})
    # Unfinished (no manifest): never restored from, pruned with the others of its age.
    buckets.put_json("dumps/20261002T000000Z/db.dump", {})
    buckets.put_json("erasures/abc.json", {})
    assert buckets.backups_taken() == ["20261001T000000Z", "20261108T000000Z", "20261201T000000Z"]

    assert buckets.prune(30, now=datetime(2026, 12, 7, 13, tzinfo=UTC)) == (2, 0)
    assert buckets.backups_taken() == ["20261108T000000Z", "20261201T000000Z"]
    # The journal entry was written now: it outlives every backup by a day.
    far = datetime.now(UTC).replace(year=datetime.now(UTC).year + 1)
    assert buckets.prune(30, now=far) == (2, 1)
    assert list(buckets.objects(buckets.backups)) == []


def test_what_it_writes_is_encrypted(buckets: Buckets) -> None:
    buckets.put_json("dumps/20261201T000000Z/manifest.json", {"a": 1})
    stat = buckets.s3.stat_object(buckets.backups, "dumps/20261201T000000Z/manifest.json")
    assert stat.metadata.get("x-amz-server-side-encryption") == "AES256"
    assert buckets.get_json("dumps/20261201T000000Z/manifest.json") == {"a": 1}
