"""What `visiona photos upload` says about a photo S3 would not take: the limit, in bytes and
for people, and S3's own words for any other refusal."""

from __future__ import annotations

import httpx

from visiona.cli.api import refused, size_text, too_large

SLOT = {"photo_id": "p-1", "max_bytes": 20 * 1024 * 1024}


def s3_error(status: int, code: str, message: str) -> httpx.Response:
    body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    return httpx.Response(status, text=body, headers={"content-type": "application/xml"})


def test_a_file_over_the_limit_is_too_large_with_both_sizes() -> None:
    verdict = too_large(SLOT, 26528972)
    assert (verdict["status"], verdict["reasons"]) == ("rejected", ["too_large"])
    assert verdict["max_bytes"] == 20971520
    assert verdict["detail"] == (
        "the file is 25.3 MiB (26528972 bytes); photos are at most 20 MiB (20971520 bytes)"
    )


def test_s3_refusing_a_large_entity_is_too_large_with_the_limit() -> None:
    verdict = refused(SLOT, s3_error(400, "EntityTooLarge", "Your proposed upload exceeds"))
    assert verdict["reasons"] == ["too_large"]
    assert "20 MiB (20971520 bytes)" in verdict["detail"]


def test_any_other_refusal_says_what_s3_said() -> None:
    verdict = refused(SLOT, s3_error(403, "AccessDenied", "Policy expired"))
    assert verdict["reasons"] == ["upload_refused"]
    assert verdict["detail"] == "S3 answered HTTP 403: AccessDenied: Policy expired"


def test_sizes_read_as_people_say_them() -> None:
    assert [size_text(n) for n in (512, 1536, 20 * 1024 * 1024)] == [
        "512 bytes",
        "1.5 KiB",
        "20 MiB",
    ]
