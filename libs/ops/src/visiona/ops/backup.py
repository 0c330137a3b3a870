"""``visiona-ops backup``: the database and the app bucket's objects into the backup bucket.

The dump is streamed from pg_dump to the bucket (never to local disk) and hashed on the way;
the objects are copied server-side; the manifest is written last, so a backup without one was
interrupted and is never restored from (prune removes it with the others of its age).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from visiona.ops import db
from visiona.ops.settings import BackupSettings
from visiona.ops.store import DUMPS, Buckets, stamp


@dataclass(frozen=True)
class BackupResult:
    name: str
    manifest: dict[str, Any]
    lifecycle: bool
    pruned: tuple[int, int]


def take(settings: BackupSettings, now: datetime | None = None) -> BackupResult:
    url = settings.database_url.get_secret_value()
    buckets = Buckets.from_settings(settings)
    buckets.ensure(settings.bucket)
    started = now or datetime.now(UTC)
    name = stamp(started)
    prefix = f"{DUMPS}{name}/"

    versions = db.schema_versions(url)
    suffix = db.role_suffix(url)
    dump = db.start_dump(url)
    assert dump.stdout is not None
    reader = db.HashingReader(dump.stdout)
    try:
        buckets.put_stream(f"{prefix}db.dump", reader, content_type="application/octet-stream")
    finally:
        code = dump.wait()
    if code != 0:
        error = dump.stderr.read().decode(errors="replace") if dump.stderr else ""
        buckets.delete([f"{prefix}db.dump"])
        raise RuntimeError(f"pg_dump failed ({code}): {error.strip()[-2000:]}")

    count = size = 0
    skip = tuple(settings.skip_prefixes)
    for key, length in buckets.objects(settings.source_bucket):
        if key.startswith(skip):
            continue
        buckets.copy(settings.source_bucket, key, settings.bucket, f"{prefix}objects/{key}")
        count += 1
        size += length

    manifest = {
        "name": name,
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "database": db.database_of(url),
        "role_suffix": suffix,
        "schema_versions": versions,
        "dump": {
            "key": f"{prefix}db.dump",
            "bytes": reader.bytes,
            "sha256": reader.sha256.hexdigest(),
        },
        "objects": {
            "bucket": settings.source_bucket,
            "count": count,
            "bytes": size,
            "skipped_prefixes": list(skip),
        },
        "encryption": settings.s3_sse,
    }
    buckets.put_json(f"{prefix}manifest.json", manifest)
    lifecycle = buckets.ensure_lifecycle(settings.retention_days)
    pruned = buckets.prune(settings.retention_days)
    return BackupResult(name, manifest, lifecycle, pruned)
