"""The backup bucket and the app bucket, through the MinIO SDK (synchronous: a CLI).

Layout of the backup bucket::

    dumps/<UTC timestamp>/db.dump          pg_dump -Fc of the whole database
    dumps/<UTC timestamp>/objects/<key>    a copy of each object of the app bucket
    dumps/<UTC timestamp>/manifest.json    written last: a backup without one is unfinished
    erasures/<pseudonym>.json              the gateway's erasure journal (one per erasure)
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO, Protocol

from minio import Minio
from minio.commonconfig import ENABLED, CopySource, Filter
from minio.deleteobjects import DeleteObject
from minio.error import S3Error
from minio.lifecycleconfig import Expiration, LifecycleConfig, Rule
from minio.sse import Sse

from visiona.kit.erasure import ERASURE_JOURNAL_PREFIX
from visiona.kit.storage import server_side_encryption
from visiona.ops.settings import BackupSettings

DUMPS = "dumps/"
ERASURES = ERASURE_JOURNAL_PREFIX
PART_SIZE = 16 * 1024 * 1024
STAMP = "%Y%m%dT%H%M%SZ"


def stamp(when: datetime) -> str:
    """A backup's name: its UTC time, sortable as text (``20261207T133000Z``)."""
    return when.astimezone(UTC).strftime(STAMP)


def parse_stamp(value: str) -> datetime:
    return datetime.strptime(value, STAMP).replace(tzinfo=UTC)


def client(settings: BackupSettings) -> Minio:
    return Minio(
        settings.s3_endpoint,
        settings.s3_access_key.get_secret_value(),
        settings.s3_secret_key.get_secret_value(),
        secure=settings.s3_secure,
        region=settings.s3_region,
    )


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


@dataclass
class Buckets:
    s3: Minio
    backups: str
    sse: Sse | None

    @classmethod
    def from_settings(cls, settings: BackupSettings) -> Buckets:
        return cls(
            client(settings),
            settings.bucket,
            server_side_encryption(settings.s3_sse, settings.s3_sse_kms_key_id),
        )

    def ensure(self, bucket: str) -> None:
        if not self.s3.bucket_exists(bucket):
            try:
                self.s3.make_bucket(bucket)
            except S3Error as exc:
                if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise

    def is_empty(self, bucket: str) -> bool:
        if not self.s3.bucket_exists(bucket):
            return True
        return next(iter(self.s3.list_objects(bucket, recursive=True)), None) is None

    def objects(self, bucket: str, prefix: str = "") -> Iterator[tuple[str, int]]:
        for obj in self.s3.list_objects(bucket, prefix=prefix, recursive=True):
            yield str(obj.object_name), int(obj.size or 0)

    def put_stream(self, key: str, stream: Readable, *, content_type: str) -> None:
        """Upload of unknown length (multipart) into the backup bucket, encrypted."""
        self.s3.put_object(
            self.backups,
            key,
            stream,
            -1,
            content_type=content_type,
            part_size=PART_SIZE,
            sse=self.sse,
        )

    def put_json(self, key: str, value: Any) -> None:
        data = json.dumps(value, indent=2, sort_keys=True, default=str).encode()
        self.s3.put_object(
            self.backups,
            key,
            io.BytesIO(data),
            len(data),
            content_type="application/json",
            sse=self.sse,
        )

    def get_json(self, key: str) -> Any:
        response = self.s3.get_object(self.backups, key)
        try:
            return json.loads(response.read())
        finally:
            response.close()
            response.release_conn()

    def download(self, key: str, out: BinaryIO, chunk: int = 1024 * 1024) -> Iterator[bytes]:
        """Write the backup bucket's ``key`` to ``out``, yielding each chunk as it goes."""
        response = self.s3.get_object(self.backups, key)
        try:
            while data := response.read(chunk):
                out.write(data)
                yield data
        finally:
            response.close()
            response.release_conn()

    def copy(self, source_bucket: str, source: str, target_bucket: str, target: str) -> None:
        """A server-side copy, encrypted; streamed through here where the store cannot copy
        (across stores, or a store without CopyObject)."""
        try:
            self.s3.copy_object(
                target_bucket, target, CopySource(source_bucket, source), sse=self.sse
            )
        except S3Error as exc:
            if exc.code not in ("NotImplemented", "InvalidRequest"):
                raise
            response = self.s3.get_object(source_bucket, source)
            try:
                self.s3.put_object(
                    target_bucket, target, response, -1, part_size=PART_SIZE, sse=self.sse
                )
            finally:
                response.close()
                response.release_conn()

    # -- what is kept ---------------------------------------------------------------------

    def backups_taken(self) -> list[str]:
        """The finished backups (those with a manifest), oldest first."""
        found = set()
        for key, _ in self.objects(self.backups, DUMPS):
            parts = key.split("/")
            if len(parts) == 3 and parts[2] == "manifest.json":
                found.add(parts[1])
        return sorted(found)

    def ensure_lifecycle(self, retention_days: int) -> bool:
        """Ask the store to expire dumps after ``retention_days`` and the erasure journal a
        day later (no backup older than an entry then remains); False when it cannot."""
        config = LifecycleConfig(
            [
                Rule(
                    ENABLED,
                    rule_filter=Filter(prefix=DUMPS),
                    rule_id="expire-dumps",
                    expiration=Expiration(days=retention_days),
                ),
                Rule(
                    ENABLED,
                    rule_filter=Filter(prefix=ERASURES),
                    rule_id="expire-erasure-journal",
                    expiration=Expiration(days=retention_days + 1),
                ),
            ]
        )
        try:
            self.s3.set_bucket_lifecycle(self.backups, config)
        except S3Error as exc:
            if exc.code in ("NotImplemented", "MalformedXML", "InvalidRequest"):
                return False
            raise
        return True

    def prune(self, retention_days: int, now: datetime | None = None) -> tuple[int, int]:
        """Delete the backups older than ``retention_days`` (finished or not) and journal
        entries older than a day more; (backups, journal entries) deleted. The window holds
        on a store without lifecycle rules too."""
        now = now or datetime.now(UTC)
        cutoff = now - timedelta(days=retention_days)
        doomed: list[str] = []
        backups: set[str] = set()
        for key, _ in self.objects(self.backups, DUMPS):
            name = key.split("/")[1]
            try:
                taken = parse_stamp(name)
            except ValueError:
                continue  # not ours
            if taken < cutoff:
                doomed.append(key)
                backups.add(name)
        entries = 0
        for obj in self.s3.list_objects(self.backups, prefix=ERASURES, recursive=True):
            modified = obj.last_modified
            if modified is not None and modified < cutoff - timedelta(days=1):
                doomed.append(str(obj.object_name))
                entries += 1
        self.delete(doomed)
        return len(backups), entries

    def delete(self, keys: list[str], bucket: str | None = None) -> None:
        for start in range(0, len(keys), 1000):
            batch = [DeleteObject(k) for k in keys[start : start + 1000]]
            errors = list(self.s3.remove_objects(bucket or self.backups, batch))
            if errors:
                raise RuntimeError(f"{len(errors)} objects were not deleted: {errors[0]}")

    def remove_bucket(self, bucket: str) -> None:
        """Empty and remove ``bucket`` (tests clean up with this)."""
        if self.s3.bucket_exists(bucket):
            self.delete([k for k, _ in self.objects(bucket)], bucket)
            self.s3.remove_bucket(bucket)
