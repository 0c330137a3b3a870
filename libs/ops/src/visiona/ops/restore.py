"""``visiona-ops restore``: a backup into a FRESH database and bucket, then the erasures the
journal holds made again.

1. The target database and bucket must be missing or empty (a restore never merges).
2. The dump is fetched and checked against the manifest's sha256.
3. visiona.kit.provision makes the database, the schemas and the roles (the same role names
   the backup's schemas were owned by: the manifest's ``role_suffix``).
4. pg_restore in one transaction, without the schemas provisioning made; then every object
   goes back to its schema's migrator, RLS is forced wherever it is enabled, and provision
   runs again, so the app roles are exactly what provision + migrate make them.
5. The objects are copied into the bucket; then the erasure journal is re-applied
   (visiona.ops.erasures).
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from visiona.kit.provision import SERVICES, provision
from visiona.ops import db, erasures
from visiona.ops.settings import BackupSettings
from visiona.ops.store import DUMPS, Buckets


class RestoreRefused(Exception):
    """The target is not fresh, or the backup is not whole."""


@dataclass(frozen=True)
class RestoreResult:
    name: str
    database: str
    bucket: str
    objects: int
    reasserted: list[str]
    erasures_scheduled: list[str]


def resolve(buckets: Buckets, name: str) -> str:
    taken = buckets.backups_taken()
    if not taken:
        raise RestoreRefused(f"no finished backup in bucket {buckets.backups}")
    if name == "latest":
        return taken[-1]
    if name not in taken:
        raise RestoreRefused(f"no finished backup {name!r} (there are: {', '.join(taken)})")
    return name


def run(
    settings: BackupSettings,
    name: str,
    database: str,
    bucket: str,
    *,
    role_suffix: str | None = None,
) -> RestoreResult:
    admin = settings.database_url.get_secret_value()
    buckets = Buckets.from_settings(settings)
    name = resolve(buckets, name)
    prefix = f"{DUMPS}{name}/"
    manifest: dict[str, Any] = buckets.get_json(f"{prefix}manifest.json")
    if not db.is_empty(admin, database):
        raise RestoreRefused(f"database {database} is not empty: restore into a fresh one")
    if not buckets.is_empty(bucket):
        raise RestoreRefused(f"bucket {bucket} is not empty: restore into a fresh one")
    suffix = manifest["role_suffix"] if role_suffix is None else role_suffix
    target = db.with_database(admin, database)

    with tempfile.TemporaryDirectory(prefix="visiona-restore-") as tmp:
        dump = Path(tmp) / "db.dump"
        digest = hashlib.sha256()
        with dump.open("wb") as out:
            for chunk in buckets.download(manifest["dump"]["key"], out):
                digest.update(chunk)
        if digest.hexdigest() != manifest["dump"]["sha256"]:
            raise RestoreRefused(f"backup {name}: the dump does not match its manifest's sha256")
        listing = Path(tmp) / "restore.list"
        listing.write_text(db.restore_list(dump, (*SERVICES, "public")))
        provision(admin, database, suffix=suffix)
        db.pg_restore(target, dump, listing)
    reasserted = db.reassert_ownership(target, suffix)
    provision(admin, database, suffix=suffix)

    buckets.ensure(bucket)
    objects_prefix = f"{prefix}objects/"
    count = 0
    for key, _ in buckets.objects(buckets.backups, objects_prefix):
        buckets.copy(buckets.backups, key, bucket, key.removeprefix(objects_prefix))
        count += 1
    if count != manifest["objects"]["count"]:
        raise RestoreRefused(
            f"backup {name}: {count} objects copied, the manifest says {manifest['objects']['count']}"
        )
    scheduled = erasures.reapply(
        target, settings.pseudonym_key.get_secret_value().encode(), erasures.journal(buckets)
    )
    return RestoreResult(name, database, bucket, count, reasserted, scheduled)
