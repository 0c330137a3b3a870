"""Photos and calls shared by the training and generation tests (the sample face photos are
the CLI's, :mod:`visiona.cli.samples`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import httpx

from tests.support.stack import RunningStack
from tests.support.waiting import wait_for
from visiona.cli.samples import FACE_INDICES, face_photo
from visiona.kit.storage import Storage

TERMINAL = ("succeeded", "failed", "canceled")


def storage(stack: RunningStack) -> Storage:
    s3 = stack.cfg.s3
    assert s3 is not None
    return Storage(s3.endpoint, s3.access_key, s3.secret_key, s3.bucket, secure=s3.secure)


def objects_under(stack: RunningStack, prefix: str) -> dict[str, int]:
    """The raw bucket listing under ``prefix``: key → size."""
    s = storage(stack)
    return {
        str(o.object_name): int(o.size or 0)
        for o in s.client.list_objects(s.bucket, prefix=prefix, recursive=True)
    }


def read_object(stack: RunningStack, key: str) -> bytes:
    """An object's bytes, straight from the bucket."""
    s = storage(stack)
    response = s.client.get_object(s.bucket, key)
    try:
        return bytes(response.read())
    finally:
        response.close()
        response.release_conn()


def storage_owner(stack: RunningStack, service: str, user_id: str) -> str:
    """The opaque owner key ``service`` stores ``user_id``'s objects under (visiona.kit.owners)."""
    rows = stack.admin_sql(f"SELECT key FROM {service}.storage_owners WHERE user_id = %s", user_id)
    assert rows, f"{service} has no owner key for the user"
    return str(rows[0][0])


def api(stack: RunningStack, user: str) -> httpx.Client:
    return httpx.Client(base_url=stack.url, headers=stack.auth(user), timeout=60)


def request_uploads(
    stack: RunningStack, user: str, content_types: Sequence[str], face_policy: str = "require"
) -> list[dict[str, Any]]:
    with api(stack, user) as c:
        r = c.post(
            "/v1/photos/uploads",
            json={
                "photos": [{"content_type": ct} for ct in content_types],
                "face_policy": face_policy,
            },
        )
    assert r.status_code == 201, r.text
    return list(r.json()["uploads"])


def post_to_s3(upload: dict[str, Any], blob: bytes, content_type: str) -> httpx.Response:
    """What the browser or CLI does with a presigned POST."""
    return httpx.post(
        upload["url"],
        data=upload["fields"],
        files={"file": ("photo", blob, content_type)},
        timeout=60,
    )


def complete(stack: RunningStack, user: str, photo_id: str) -> httpx.Response:
    with api(stack, user) as c:
        return c.post(f"/v1/photos/{photo_id}/complete")


def upload_photos(
    stack: RunningStack,
    user: str,
    blobs: Sequence[bytes],
    content_type: str = "image/jpeg",
    face_policy: str = "require",
) -> list[dict[str, Any]]:
    """Upload and complete each photo; the verdicts, in order."""
    uploads = request_uploads(stack, user, [content_type] * len(blobs), face_policy)
    verdicts = []
    for upload, blob in zip(uploads, blobs, strict=True):
        posted = post_to_s3(upload, blob, content_type)
        assert posted.status_code in (200, 201, 204), posted.text
        done = complete(stack, user, upload["photo_id"])
        assert done.status_code == 200, done.text
        verdicts.append(dict(done.json()))
    return verdicts


def accepted_photo_ids(stack: RunningStack, user: str, count: int, first: int = 0) -> list[str]:
    blobs = [face_photo(i) for i in FACE_INDICES[first : first + count]]
    verdicts = upload_photos(stack, user, blobs)
    assert [v["status"] for v in verdicts] == ["accepted"] * count, verdicts
    return [v["id"] for v in verdicts]


def create_model(
    stack: RunningStack, user: str, photo_ids: list[str], **extra: Any
) -> httpx.Response:
    with api(stack, user) as c:
        return c.post("/v1/models", json={"name": "Me", "photo_ids": photo_ids, **extra})


def get_json(stack: RunningStack, user: str, path: str) -> dict[str, Any]:
    """``GET path`` through the gateway as ``user``, which must answer 200."""
    with api(stack, user) as c:
        r = c.get(path)
    assert r.status_code == 200, r.text
    return dict(r.json())


def get_model(stack: RunningStack, user: str, model_id: str) -> dict[str, Any]:
    return get_json(stack, user, f"/v1/models/{model_id}")


def wait_model(
    stack: RunningStack,
    user: str,
    model_id: str,
    done: Callable[[dict[str, Any]], bool] = lambda m: m["status"] in TERMINAL,
    timeout_s: float = 60,
) -> dict[str, Any]:
    return wait_for(f"model {model_id}", lambda: get_model(stack, user, model_id), done, timeout_s)


def replicate_url(stack: RunningStack) -> str:
    return f"http://127.0.0.1:{stack.cfg.ports['replicate']}"


def replicate_get(stack: RunningStack, path: str) -> httpx.Response:
    """The Replicate emulator's API, as the provider's owner sees it (dev token)."""
    return httpx.get(
        f"{replicate_url(stack)}{path}",
        headers={"Authorization": f"Bearer {stack.cfg.replicate_api_token}"},
        timeout=10,
    )


def emulator(stack: RunningStack, path: str, body: dict[str, Any] | None = None) -> Any:
    """POST to the Replicate emulator's controls (``/_emulator/...``)."""
    r = httpx.post(f"{replicate_url(stack)}/_emulator/{path}", json=body or {}, timeout=10)
    r.raise_for_status()
    return r.json()


def replicate_config(stack: RunningStack) -> Callable[[dict[str, Any]], object]:
    """Sets the Replicate emulator's behaviour (``/_emulator/config``)."""
    return lambda config: emulator(stack, "config", config)


def trained_model(stack: RunningStack, user: str) -> dict[str, Any]:
    """A ready model of ``user`` (who must have the credits for a training)."""
    photo_ids = accepted_photo_ids(stack, user, 10)
    created = create_model(stack, user, photo_ids, preset="fast")
    assert created.status_code == 202, created.text
    ready = wait_model(stack, user, created.json()["id"])
    assert ready["status"] == "succeeded", ready
    return ready
