"""Server-side encryption settings and the presigned POST policy that enforces them (pure:
presigning is local computation). What the store does with them is tested against the real
S3 in tests/e2e/test_encryption.py."""

from __future__ import annotations

import base64
import json

import pytest
from minio.sse import SseKMS, SseS3
from pydantic import ValidationError

from visiona.kit.settings import ServiceSettings
from visiona.kit.storage import Storage, server_side_encryption

KEY_ID = "arn:aws:kms:us-east-1:111122223333:key/visiona-objects"


def storage(sse: SseS3 | SseKMS | None) -> Storage:
    return Storage("s3.example:443", "access", "secret-key", "bucket", secure=True, sse=sse)


def policy_conditions(fields: dict[str, str]) -> list[list[object]]:
    return list(json.loads(base64.b64decode(fields["policy"]))["conditions"])


def test_encryption_is_off_unless_configured() -> None:
    settings = ServiceSettings()
    assert settings.s3_sse == "none"
    assert server_side_encryption(settings.s3_sse, settings.s3_sse_kms_key_id) is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"s3_sse": "kms", "s3_secure": True}, "needs s3_sse_kms_key_id"),
        ({"s3_sse": "kms", "s3_sse_kms_key_id": KEY_ID}, "needs s3_secure"),
        ({"s3_sse": "aes"}, "s3_sse"),
    ],
)
def test_incomplete_or_unknown_encryption_settings_are_refused(
    overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        ServiceSettings(**overrides)  # type: ignore[arg-type]


def test_kms_with_a_key_over_tls_is_accepted() -> None:
    settings = ServiceSettings(s3_sse="kms", s3_sse_kms_key_id=KEY_ID, s3_secure=True)
    sse = server_side_encryption(settings.s3_sse, settings.s3_sse_kms_key_id)
    assert sse is not None and sse.headers() == {
        "X-Amz-Server-Side-Encryption": "aws:kms",
        "X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id": KEY_ID,
    }


def test_sse_s3_post_policy_requires_the_encryption_field_and_hands_it_out() -> None:
    post = storage(SseS3()).presigned_post("uploads/u/1", max_bytes=10, content_type="image/jpeg")
    assert post.fields["x-amz-server-side-encryption"] == "AES256"
    assert ["eq", "$x-amz-server-side-encryption", "AES256"] in policy_conditions(post.fields)


def test_sse_kms_post_policy_pins_the_key_too() -> None:
    post = storage(SseKMS(KEY_ID, {})).presigned_post(
        "uploads/u/1", max_bytes=10, content_type="image/jpeg"
    )
    conditions = policy_conditions(post.fields)
    assert ["eq", "$x-amz-server-side-encryption", "aws:kms"] in conditions
    assert ["eq", "$x-amz-server-side-encryption-aws-kms-key-id", KEY_ID] in conditions
    assert post.fields["x-amz-server-side-encryption-aws-kms-key-id"] == KEY_ID


def test_without_encryption_the_policy_has_no_encryption_condition() -> None:
    post = storage(None).presigned_post("uploads/u/1", max_bytes=10, content_type="image/jpeg")
    assert not any("encryption" in key for key in post.fields)
    assert not any("encryption" in str(c) for c in policy_conditions(post.fields))
