"""The browser's side of S3 on the stacks' SeaweedFS: the web app's pages, and no other, may
POST a photo through a presigned form and GET what they are handed presigned URLs for.

Two mechanisms, because SeaweedFS answers in two places: the preflight of a bucket's own path
(where a presigned POST goes) comes from its server-wide CORS (``-s3.allowedOrigins``);
everything under the bucket, and the answers to real requests, from the bucket's own CORS
rules (PutBucketCors, :func:`configure_bucket`)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import httpx
import pytest

from visiona.emulators.stack import SeaweedFS, configure_bucket
from visiona.kit.storage import Storage

WEB = "http://localhost:3000"
OTHER_WEB = "http://localhost:3001"
STRANGER = "http://evil.example"


@pytest.fixture
def storage(new_seaweedfs: SeaweedFS) -> Iterator[Storage]:
    new_seaweedfs.web_origins = (WEB, OTHER_WEB)
    new_seaweedfs.start()
    s3 = new_seaweedfs.s3
    configure_bucket(s3, new_seaweedfs.web_origins)
    yield Storage(s3.endpoint, s3.access_key, s3.secret_key, s3.bucket)


def preflight(url: str, origin: str, method: str) -> httpx.Response | None:
    """A browser's preflight; None when the server drops it unanswered (SeaweedFS does so
    for an origin its server-wide list lacks: to a browser, a refusal like any other)."""
    try:
        return httpx.options(
            url,
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": method,
                # What XMLHttpRequest asks for a multipart form with an upload listener.
                "Access-Control-Request-Headers": "content-type",
            },
            timeout=10,
        )
    except httpx.RemoteProtocolError:
        return None


def allowed(answer: httpx.Response | None, origin: str) -> bool:
    return answer is not None and answer.headers.get("access-control-allow-origin") == origin


def allows_method(answer: httpx.Response, method: str) -> bool:
    methods = [m.strip() for m in answer.headers.get("access-control-allow-methods", "").split(",")]
    return "*" in methods or method in methods


def test_the_web_apps_pages_may_post_a_photo_through_a_presigned_form(storage: Storage) -> None:
    post = storage.presigned_post("uploads/u1/photo.jpg", max_bytes=4096, content_type="image/jpeg")

    for origin in (WEB, OTHER_WEB):
        answer = preflight(post.url, origin, "POST")
        assert allowed(answer, origin), answer and answer.headers
        assert answer is not None and allows_method(answer, "POST")
    assert not allowed(preflight(post.url, STRANGER, "POST"), STRANGER)

    stored = httpx.post(
        post.url,
        data=post.fields,
        files={"file": ("photo.jpg", b"\xff\xd8" + b"x" * 100, "image/jpeg")},
        headers={"Origin": WEB},
        timeout=30,
    )
    assert stored.status_code == 204, stored.text
    assert stored.headers["access-control-allow-origin"] == WEB
    assert stored.headers["access-control-expose-headers"] == "ETag"
    assert stored.headers["etag"]


def test_the_web_apps_pages_may_get_what_they_are_handed_and_nothing_more(
    storage: Storage,
) -> None:
    key = "images/u1/image.png"
    storage.client.put_object(storage.bucket, key, io.BytesIO(b"png"), 3)
    url = storage.presigned_get(key)

    answer = preflight(url, WEB, "GET")
    assert allowed(answer, WEB)
    assert answer is not None
    assert answer.headers["access-control-allow-methods"] == "GET, HEAD, POST"
    assert answer.headers["access-control-expose-headers"] == "ETag"
    # Deleting and overwriting are the API's, never the browser's straight to S3.
    for method in ("DELETE", "PUT"):
        refused = preflight(url, WEB, method)
        assert refused is None or not allows_method(refused, method), method
    assert not allowed(preflight(url, STRANGER, "GET"), STRANGER)

    fetched = httpx.get(url, headers={"Origin": WEB}, timeout=10)
    assert fetched.status_code == 200 and fetched.content == b"png"
    assert fetched.headers["access-control-allow-origin"] == WEB
    elsewhere = httpx.get(url, headers={"Origin": STRANGER}, timeout=10)
    assert "access-control-allow-origin" not in elsewhere.headers


def test_a_stack_without_web_origins_lets_no_page_in(new_seaweedfs: SeaweedFS) -> None:
    new_seaweedfs.web_origins = ()
    new_seaweedfs.start()
    s3 = new_seaweedfs.s3
    configure_bucket(s3, ())
    storage = Storage(s3.endpoint, s3.access_key, s3.secret_key, s3.bucket)
    post = storage.presigned_post("uploads/u1/photo.jpg", max_bytes=4096, content_type="image/jpeg")
    assert not allowed(preflight(post.url, WEB, "POST"), WEB)
    assert not allowed(preflight(f"{post.url}/uploads/u1/photo.jpg", WEB, "GET"), WEB)
