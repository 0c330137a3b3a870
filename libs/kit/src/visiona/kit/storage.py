"""S3 storage through the MinIO SDK: private objects, presigned POST and GET, streaming I/O.

The SDK is synchronous; every network call runs in a worker thread. Presigning is local
computation (the region is configured, so no lookup happens) and may use a public endpoint
different from the internal one, for URLs handed to browsers and providers.

With server-side encryption configured (``s3_sse``), every write asks for it: puts, multipart
uploads, server-side copies, and presigned POSTs, whose policy requires the encryption form
field (returned in ``fields``) so a browser cannot store an object unencrypted.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import BinaryIO, Literal

from minio import Minio
from minio.commonconfig import CopySource
from minio.datatypes import PostPolicy
from minio.deleteobjects import DeleteObject
from minio.error import S3Error
from minio.sse import Sse, SseKMS, SseS3

from visiona.kit.settings import ServiceSettings

CHUNK = 1024 * 1024
# What S3 (and MinIO) answer for an object that is not there.
_MISSING = ("NoSuchKey", "NoSuchObject", "NotFound")


def is_missing(error: BaseException) -> bool:
    """Whether ``error`` is the store's answer for an object that is not there."""
    return isinstance(error, S3Error) and error.code in _MISSING


def server_side_encryption(
    mode: Literal["none", "s3", "kms"], kms_key_id: str | None = None
) -> Sse | None:
    """The SDK's encryption for ``s3_sse``: SSE-S3, SSE-KMS under ``kms_key_id``, or none."""
    if mode == "s3":
        return SseS3()
    if mode == "kms":
        if not kms_key_id:
            raise ValueError("SSE-KMS needs a key id")
        return SseKMS(kms_key_id, {})
    return None


@dataclass(frozen=True)
class PresignedPost:
    """A browser form upload: POST ``fields`` plus the file (as field ``file``) to ``url``."""

    url: str
    fields: dict[str, str]
    key: str
    expires_at: datetime


class Storage:
    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        *,
        secure: bool = False,
        region: str = "us-east-1",
        public_endpoint: str | None = None,
        provider_endpoint: str | None = None,
        sse: Sse | None = None,
    ) -> None:
        self.bucket = bucket
        self.secure = secure
        self.sse = sse
        self.client = Minio(endpoint, access_key, secret_key, secure=secure, region=region)
        self.public_endpoint = public_endpoint or endpoint
        self.signer = (
            Minio(public_endpoint, access_key, secret_key, secure=secure, region=region)
            if public_endpoint
            else self.client
        )
        self.provider_signer = (
            Minio(provider_endpoint, access_key, secret_key, secure=secure, region=region)
            if provider_endpoint
            else self.signer
        )

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> Storage:
        if not settings.s3_endpoint:
            raise ValueError("s3_endpoint is not configured")
        return cls(
            settings.s3_endpoint,
            settings.s3_access_key.get_secret_value(),
            settings.s3_secret_key.get_secret_value(),
            settings.s3_bucket,
            secure=settings.s3_secure,
            region=settings.s3_region,
            public_endpoint=settings.s3_public_endpoint,
            provider_endpoint=settings.s3_provider_endpoint,
            sse=server_side_encryption(settings.s3_sse, settings.s3_sse_kms_key_id),
        )

    async def ensure_bucket(self) -> None:
        """Create the (private) bucket if it does not exist."""

        def create() -> None:
            if not self.client.bucket_exists(self.bucket):
                try:
                    self.client.make_bucket(self.bucket)
                except S3Error as exc:  # another instance won the race
                    if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        raise

        await asyncio.to_thread(create)

    def presigned_post(
        self,
        key: str,
        *,
        max_bytes: int,
        content_type: str,
        min_bytes: int = 1,
        expires: timedelta = timedelta(minutes=15),
    ) -> PresignedPost:
        """A POST policy for exactly one object, ``key``, of this type and size range.

        The key is an ``eq`` condition: the policy stores that one object and nothing else.
        A signed policy cannot be revoked, so until it expires the same key can be posted
        again; the caller must treat whatever is at ``key`` after its first use as untrusted
        and remove it (training's upload sweep does)."""
        expires_at = datetime.now(UTC) + expires
        policy = PostPolicy(self.bucket, expires_at)
        policy.add_equals_condition("key", key)
        policy.add_equals_condition("Content-Type", content_type)
        policy.add_content_length_range_condition(min_bytes, max_bytes)
        encryption = self.sse_form_fields()
        for name, value in encryption.items():
            policy.add_equals_condition(name, value)
        fields = self.signer.presigned_post_policy(policy)
        fields = {**fields, **encryption, "key": key, "Content-Type": content_type}
        scheme = "https" if self.secure else "http"
        return PresignedPost(
            f"{scheme}://{self.public_endpoint}/{self.bucket}", fields, key, expires_at
        )

    def sse_form_fields(self) -> dict[str, str]:
        """The encryption headers as POST form fields (``x-amz-server-side-encryption``, and
        the KMS key id for SSE-KMS); empty without encryption."""
        return {k.lower(): v for k, v in self.sse.headers().items()} if self.sse else {}

    def presigned_get(
        self,
        key: str,
        *,
        expires: timedelta = timedelta(minutes=15),
        response_headers: Mapping[str, str] | None = None,
        for_provider: bool = False,
    ) -> str:
        """A GET URL for browsers, or (``for_provider``) for an external provider to fetch."""
        signer = self.provider_signer if for_provider else self.signer
        url: str = signer.presigned_get_object(
            self.bucket, key, expires=expires, response_headers=dict(response_headers or {})
        )
        return url

    async def put_stream(
        self, key: str, stream: BinaryIO, *, length: int = -1, content_type: str
    ) -> None:
        """Upload from a file-like object; unknown lengths go up as a multipart upload."""
        await asyncio.to_thread(
            self.client.put_object,
            self.bucket,
            key,
            stream,
            length,
            content_type=content_type,
            part_size=0 if length >= 0 else 10 * CHUNK,
            sse=self.sse,
        )

    async def put_bytes(self, key: str, data: bytes, *, content_type: str) -> None:
        await self.put_stream(key, io.BytesIO(data), length=len(data), content_type=content_type)

    async def get_stream(self, key: str, chunk_size: int = CHUNK) -> AsyncIterator[bytes]:
        """Read an object in chunks without holding it in memory."""
        response = await asyncio.to_thread(self.client.get_object, self.bucket, key)
        try:
            while True:
                chunk = await asyncio.to_thread(response.read, chunk_size)
                if not chunk:
                    break
                yield chunk
        finally:
            response.close()
            response.release_conn()

    async def exists(self, key: str) -> bool:
        try:
            await asyncio.to_thread(self.client.stat_object, self.bucket, key)
        except S3Error as exc:
            if is_missing(exc):
                return False
            raise
        return True

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.client.remove_object, self.bucket, key)

    async def copy(self, source: str, target: str) -> int:
        """Server-side copy of ``source`` to ``target`` in the bucket; returns its size."""

        def run() -> int:
            self.client.copy_object(
                self.bucket, target, CopySource(self.bucket, source), sse=self.sse
            )
            size = self.client.stat_object(self.bucket, target).size
            return int(size or 0)

        return await asyncio.to_thread(run)

    async def list_keys(
        self, prefix: str, *, start_after: str | None = None, limit: int | None = None
    ) -> list[tuple[str, int]]:
        """Objects under ``prefix``, in key order: (key, size); at most ``limit`` of them,
        those after ``start_after`` when given."""

        def run() -> list[tuple[str, int]]:
            found: list[tuple[str, int]] = []
            for obj in self.client.list_objects(
                self.bucket, prefix=prefix, recursive=True, start_after=start_after
            ):
                if limit is not None and len(found) >= limit:
                    break
                found.append((str(obj.object_name), int(obj.size or 0)))
            return found

        return await asyncio.to_thread(run)

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix`` (batched); returns how many there were."""
        if not prefix or not prefix.endswith("/"):
            raise ValueError("a prefix to delete must end with '/'")

        def run() -> int:
            keys = [
                DeleteObject(str(obj.object_name))
                for obj in self.client.list_objects(self.bucket, prefix=prefix, recursive=True)
            ]
            if keys:
                errors = list(self.client.remove_objects(self.bucket, keys))
                if errors:
                    raise RuntimeError(f"{len(errors)} objects under the prefix were not deleted")
            return len(keys)

        return await asyncio.to_thread(run)
