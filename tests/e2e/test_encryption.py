"""Objects at rest are encrypted by S3 (SSE-S3): the test stack's SeaweedFS has a key-encryption
key and every service runs with ``<SVC>_S3_SSE=s3``, so each write path (presigned POST, put,
multipart upload, server-side copy) must ask for encryption, and the store's answer is read
back with a raw ``minio`` client's ``stat_object``."""

from __future__ import annotations

import io
import uuid

import pytest
from minio import Minio
from minio.sse import SseS3

from tests.e2e.test_billing import buy_starter, wait_balance
from tests.e2e.training_helpers import (
    api,
    complete,
    post_to_s3,
    request_uploads,
    storage_owner,
    trained_model,
)
from tests.support.stack import RunningStack
from tests.support.waiting import wait_for
from visiona.cli.samples import face_photo
from visiona.kit.storage import Storage

SSE_HEADER = "x-amz-server-side-encryption"
STARTER_CREDITS = 200


@pytest.fixture
def raw(stack: RunningStack) -> Minio:
    """A plain SDK client with the stack's credentials: it reports what the store says."""
    s3 = stack.cfg.s3
    assert s3 is not None
    return Minio(s3.endpoint, s3.access_key, s3.secret_key, secure=s3.secure)


@pytest.fixture
def encrypting(stack: RunningStack) -> Storage:
    """The kit's storage as the services build it with ``s3_sse=s3``."""
    s3 = stack.cfg.s3
    assert s3 is not None
    return Storage(s3.endpoint, s3.access_key, s3.secret_key, s3.bucket, sse=SseS3())


def encryption(raw: Minio, bucket: str, key: str) -> str | None:
    """The encryption S3 reports for a stored object (HEAD), None for plaintext."""
    value = raw.stat_object(bucket, key).metadata.get(SSE_HEADER)
    return str(value) if value is not None else None


def test_a_photo_is_encrypted_from_its_browser_upload_to_its_clean_copy(
    stack: RunningStack, raw: Minio
) -> None:
    user = f"sealed{uuid.uuid4().hex[:8]}"
    upload = request_uploads(stack, user, ["image/jpeg"])[0]
    # The policy requires the encryption field, so the client must send it as handed out.
    assert upload["fields"][SSE_HEADER] == "AES256"
    without = {k: v for k, v in upload["fields"].items() if k != SSE_HEADER}
    refused = post_to_s3(dict(upload, fields=without), face_photo(1), "image/jpeg")
    assert refused.status_code == 403, refused.text
    other_mode = dict(upload, fields=dict(upload["fields"], **{SSE_HEADER: "aws:kms"}))
    assert post_to_s3(other_mode, face_photo(1), "image/jpeg").status_code == 403

    posted = post_to_s3(upload, face_photo(1), "image/jpeg")
    assert posted.status_code in (200, 201, 204), posted.text
    bucket = stack.cfg.s3.bucket  # type: ignore[union-attr]
    assert encryption(raw, bucket, upload["fields"]["key"]) == "AES256"

    done = complete(stack, user, upload["photo_id"])
    assert done.status_code == 200 and done.json()["status"] == "accepted", done.text
    ((clean_key,),) = stack.admin_sql(
        "SELECT object_key FROM training.photos WHERE id = %s", uuid.UUID(upload["photo_id"])
    )
    assert encryption(raw, bucket, str(clean_key)) == "AES256"


def test_a_models_dataset_weights_and_generated_images_are_encrypted(
    stack: RunningStack, raw: Minio
) -> None:
    user = f"sealedmodel{uuid.uuid4().hex[:8]}"
    buy_starter(stack, user)
    wait_balance(stack, user, STARTER_CREDITS)
    model = trained_model(stack, user)
    ((dataset_key, weights_key),) = stack.admin_sql(
        "SELECT dataset_key, weights_key FROM training.models WHERE id = %s",
        uuid.UUID(model["id"]),
    )
    bucket = stack.cfg.s3.bucket  # type: ignore[union-attr]
    # The zip goes up as a multipart stream of unknown length, the weights as one put.
    assert encryption(raw, bucket, str(dataset_key)) == "AES256"
    assert encryption(raw, bucket, str(weights_key)) == "AES256"

    with api(stack, user) as c:
        created = c.post("/v1/generations", json={"model_id": model["id"], "prompt": "me"})
        assert created.status_code == 202, created.text
        gen_id = created.json()["id"]
        wait_for(
            f"generation {gen_id}",
            lambda: c.get(f"/v1/generations/{gen_id}").json()["status"],
            lambda status: status == "succeeded",
            timeout_s=60,
        )
    owner = storage_owner(stack, "generation", f"user_{user}")
    images = [o.object_name for o in raw.list_objects(bucket, f"images/{owner}/", True)]
    assert len(images) >= 2, images  # the image and its thumbnail
    assert {encryption(raw, bucket, str(key)) for key in images} == {"AES256"}


async def test_puts_multipart_uploads_and_copies_ask_for_encryption(
    stack: RunningStack, raw: Minio, encrypting: Storage
) -> None:
    prefix = f"sse-test/{uuid.uuid4().hex}/"
    bucket = encrypting.bucket
    # A control written without SSE, so the check below can tell the difference.
    raw.put_object(bucket, f"{prefix}plain", io.BytesIO(b"plain"), 5)
    assert encryption(raw, bucket, f"{prefix}plain") is None

    await encrypting.put_bytes(f"{prefix}small", b"x" * 100, content_type="text/plain")
    assert encryption(raw, bucket, f"{prefix}small") == "AES256"

    # Unknown length: a multipart upload of two 10 MiB parts and a tail.
    big = io.BytesIO(b"y" * (21 * 1024 * 1024))
    await encrypting.put_stream(f"{prefix}multi", big, content_type="application/octet-stream")
    assert encryption(raw, bucket, f"{prefix}multi") == "AES256"
    streamed = b"".join([chunk async for chunk in encrypting.get_stream(f"{prefix}multi")])
    assert streamed == big.getvalue()

    # Copying an unencrypted object stores the copy encrypted.
    assert await encrypting.copy(f"{prefix}plain", f"{prefix}copy") == 5
    assert encryption(raw, bucket, f"{prefix}copy") == "AES256"
    assert await encrypting.delete_prefix(prefix) == 4
