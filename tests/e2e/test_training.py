"""Training end to end: presigned uploads to S3, validation, billing's hold, the real
`replicate` SDK against the Replicate emulator, signed webhooks, the reconciler, weights
copied into our storage, and credits captured or released."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import tarfile
import time
import uuid
import zipfile
from typing import Any

import httpx
from PIL import Image

from tests.e2e.test_billing import balance, buy_starter, ledger, wait_balance
from tests.e2e.training_helpers import (
    accepted_photo_ids,
    api,
    complete,
    create_model,
    emulator,
    get_model,
    post_to_s3,
    replicate_get,
    request_uploads,
    storage,
    storage_owner,
    upload_photos,
    wait_model,
)
from tests.support.rows import rows_naming
from tests.support.stack import RunningStack
from tests.support.waiting import wait_for
from visiona.cli.samples import astronaut, encode, face_photo
from visiona.emulators.replicate import DEFAULT_WEBHOOK_SECRET

TRAINING_PRICE = 150
STARTER_CREDITS = 200


def new_user(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def funded_user(stack: RunningStack, prefix: str) -> str:
    user = new_user(prefix)
    buy_starter(stack, user)
    wait_balance(stack, user, STARTER_CREDITS)
    return user


def ready_to_train(stack: RunningStack, prefix: str) -> tuple[str, list[str]]:
    """A user with the credits for a training and ten accepted photos: the user, the photos."""
    user = funded_user(stack, prefix)
    return user, accepted_photo_ids(stack, user, 10)


def model_row(stack: RunningStack, model_id: str) -> dict[str, Any]:
    rows = stack.admin_sql(
        "SELECT row_to_json(m) FROM training.models m WHERE id = %s", uuid.UUID(model_id)
    )
    assert rows, f"no row for model {model_id}"
    return dict(rows[0][0])  # type: ignore[call-overload]


def object_exists(stack: RunningStack, key: str) -> bool:
    s = storage(stack)
    try:
        s.client.stat_object(s.bucket, key)
    except Exception:
        return False
    return True


# --- the whole flow -------------------------------------------------------------------------


def test_upload_validate_train_webhook_weights_ready_and_credits_captured(
    stack: RunningStack,
) -> None:
    user = funded_user(stack, "trainer")
    # The unmodified astronaut portrait is one of the ten.
    blobs = [encode(astronaut(), quality=92)] + [
        face_photo(i) for i in (2, 3, 5, 6, 7, 8, 9, 10, 11)
    ]
    verdicts = upload_photos(stack, user, blobs)
    assert [v["status"] for v in verdicts] == ["accepted"] * 10, verdicts
    assert all(v["faces"] == 1 and v["preview_url"] for v in verdicts)
    photo_ids = [v["id"] for v in verdicts]

    created = create_model(stack, user, photo_ids, preset="fast")
    assert created.status_code == 202, created.text
    model = created.json()
    assert model["status"] == "awaiting_credits" and model["photo_count"] == 10
    assert model["trigger_word"].startswith("vsn") and len(model["trigger_word"]) == 9

    ready = wait_model(stack, user, model["id"])
    assert ready["status"] == "succeeded", ready
    assert ready["progress"] == 1.0 and ready["failure"] is None
    owner_name, _, version_id = ready["version"].partition(":")
    assert owner_name == f"visiona/vsn-{uuid.UUID(model['id']).hex}" and len(version_id) == 64
    assert ready["queued_at"] and ready["started_at"] and ready["finished_at"]

    row = model_row(stack, model["id"])
    # Weights are in our storage, not only behind the provider's expiring URL.
    owner = storage_owner(stack, "training", f"user_{user}")
    assert row["weights_key"] == f"models/{owner}/{model['id']}/weights.tar"
    s = storage(stack)
    weights = s.client.get_object(s.bucket, row["weights_key"]).read()
    with tarfile.open(fileobj=io.BytesIO(weights)) as tar:
        assert "lora.safetensors" in tar.getnames()
    # The dataset: a zip of the ten cleaned photos, in our private bucket.
    dataset = s.client.get_object(s.bucket, row["dataset_key"]).read()
    with zipfile.ZipFile(io.BytesIO(dataset)) as zf:
        assert len(zf.namelist()) == 10
        first = Image.open(io.BytesIO(zf.read(zf.namelist()[0])))
        assert first.format == "JPEG" and not first.info.get("exif")
    anonymous = httpx.get(f"http://{stack.cfg.s3.endpoint}/{s.bucket}/{row['dataset_key']}")  # type: ignore[union-attr]
    assert anonymous.status_code == 403

    # The provider fetched it through a short-lived presigned URL, with our preset's inputs.
    training = replicate_get(stack, f"/v1/trainings/{row['provider_training_id']}").json()
    inputs = training["input"]
    assert (
        "X-Amz-Signature=" in inputs["input_images"] and "X-Amz-Expires=" in inputs["input_images"]
    )
    assert inputs["trigger_word"] == model["trigger_word"]
    assert (inputs["steps"], inputs["lora_rank"]) == (500, 16)
    assert training["destination"] == owner_name

    # Billing held the price, then captured it when the model was ready.
    final = wait_balance(stack, user, STARTER_CREDITS - TRAINING_PRICE)
    assert final["held"] == 0
    kinds = [e["kind"] for e in ledger(stack, user)]
    assert kinds[:2] == ["capture", "hold"]


def test_lost_webhooks_are_made_up_for_by_the_reconciler(stack: RunningStack) -> None:
    user, photo_ids = ready_to_train(stack, "lost")
    emulator(stack, "config", {"drop_webhooks": True})
    model = create_model(stack, user, photo_ids).json()
    ready = wait_model(stack, user, model["id"], timeout_s=60)
    assert ready["status"] == "succeeded", ready
    row = model_row(stack, model["id"])
    received = stack.admin_sql(
        "SELECT count(*) FROM training.replicate_webhooks WHERE provider_id = %s",
        row["provider_training_id"],
    )
    assert received == [(0,)]  # nothing arrived: the reconciler did it all
    wait_balance(stack, user, STARTER_CREDITS - TRAINING_PRICE)


def test_a_provider_failure_fails_the_model_and_releases_the_credits(
    stack: RunningStack,
) -> None:
    user, photo_ids = ready_to_train(stack, "failing")
    emulator(stack, "config", {"fail_next_trainings": 1})
    model = create_model(stack, user, photo_ids).json()
    failed = wait_model(stack, user, model["id"])
    assert failed["status"] == "failed", failed
    assert failed["failure"]["reason"] == "provider_failed"
    assert failed["version"] is None
    wait_for(
        "the hold released",
        lambda: balance(stack, user),
        lambda b: b == {"balance": STARTER_CREDITS, "held": 0, "available": STARTER_CREDITS},
    )
    kinds = [e["kind"] for e in ledger(stack, user)]
    assert kinds[:2] == ["release", "hold"]


def test_cancel_stops_the_provider_training_and_releases_the_credits(
    stack: RunningStack,
) -> None:
    user, photo_ids = ready_to_train(stack, "canceler")
    emulator(stack, "config", {"training_duration_s": 60})
    model = create_model(stack, user, photo_ids).json()
    wait_model(stack, user, model["id"], lambda m: m["status"] in ("queued", "training"))
    with api(stack, user) as c:
        canceled = c.post(f"/v1/models/{model['id']}/cancel")
        assert canceled.status_code == 200, canceled.text
        assert canceled.json()["status"] == "canceled"
        assert canceled.json()["failure"]["reason"] == "canceled_by_user"
        again = c.post(f"/v1/models/{model['id']}/cancel")
        assert again.status_code == 409 and again.json()["code"] == "model_finished"
    provider_id = model_row(stack, model["id"])["provider_training_id"]
    wait_for(
        "the provider's training canceled",
        lambda: replicate_get(stack, f"/v1/trainings/{provider_id}").json()["status"],
        lambda s: s == "canceled",
    )
    wait_for("no pending work", lambda: model_row(stack, model["id"])["work"], lambda w: w is None)
    wait_balance(stack, user, STARTER_CREDITS)
    assert balance(stack, user)["held"] == 0
    assert get_model(stack, user, model["id"])["status"] == "canceled"


def test_without_credits_the_training_fails_and_nothing_is_held(stack: RunningStack) -> None:
    user = new_user("broke")
    photo_ids = accepted_photo_ids(stack, user, 10)
    model = create_model(stack, user, photo_ids).json()
    failed = wait_model(stack, user, model["id"])
    assert failed["status"] == "failed"
    assert failed["failure"]["reason"] == "insufficient_credits"
    assert "150" in failed["failure"]["message"]
    assert model_row(stack, model["id"])["provider_training_id"] is None
    assert balance(stack, user) == {"balance": 0, "held": 0, "available": 0}


# --- model management -----------------------------------------------------------------------


def test_list_rename_and_delete_removes_ours_and_the_providers_copies(
    stack: RunningStack,
) -> None:
    user, photo_ids = ready_to_train(stack, "manager")
    model = create_model(stack, user, photo_ids).json()
    wait_model(stack, user, model["id"])
    row = model_row(stack, model["id"])
    destination = row["provider_model"]
    assert replicate_get(stack, f"/v1/models/{destination}").status_code == 200

    with api(stack, user) as c:
        listed = c.get("/v1/models", params={"limit": 1}).json()
        assert [m["id"] for m in listed["models"]] == [model["id"]]
        assert listed["next_cursor"] is None
        renamed = c.patch(f"/v1/models/{model['id']}", json={"name": "  Studio me  "})
        assert renamed.status_code == 200 and renamed.json()["name"] == "Studio me"
        assert c.patch(f"/v1/models/{model['id']}", json={"name": ""}).status_code == 422

        assert c.delete(f"/v1/models/{model['id']}").status_code == 204
        assert c.get(f"/v1/models/{model['id']}").status_code == 404
        assert c.get("/v1/models").json()["models"] == []
        assert c.delete(f"/v1/models/{model['id']}").status_code == 404

    wait_for(
        "the row purged",
        lambda: stack.admin_sql(
            "SELECT count(*) FROM training.models WHERE id = %s", uuid.UUID(model["id"])
        ),
        lambda rows: rows == [(0,)],
    )
    assert replicate_get(stack, f"/v1/models/{destination}").status_code == 404
    assert not object_exists(stack, row["weights_key"])
    assert not object_exists(stack, row["dataset_key"])
    # The credits were spent on a model the user had; deleting it refunds nothing.
    assert balance(stack, user)["balance"] == STARTER_CREDITS - TRAINING_PRICE


def test_models_page_with_a_cursor(stack: RunningStack) -> None:
    user = new_user("pager")
    photo_ids = accepted_photo_ids(stack, user, 10)
    ids = []
    for _ in range(3):  # no credits: each fails fast and stops counting against the limits
        model = create_model(stack, user, photo_ids)
        assert model.status_code == 202, model.text
        ids.append(model.json()["id"])
        wait_model(stack, user, ids[-1])
    seen: list[str] = []
    cursor = None
    with api(stack, user) as c:
        while True:
            params: dict[str, Any] = {"limit": 2}
            if cursor:
                params["cursor"] = cursor
            page = c.get("/v1/models", params=params).json()
            seen += [m["id"] for m in page["models"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert c.get("/v1/models", params={"cursor": "not-a-cursor"}).status_code == 422
    assert seen == list(reversed(ids))


# --- limits and bad input ---------------------------------------------------------------------


def test_plan_limits_refuse_a_second_training_and_a_second_model(stack: RunningStack) -> None:
    user, photo_ids = ready_to_train(stack, "limited")
    emulator(stack, "config", {"training_duration_s": 4})
    first = create_model(stack, user, photo_ids).json()
    second = create_model(stack, user, photo_ids)
    assert second.status_code == 409 and second.json()["code"] == "training_limit_reached"
    wait_model(stack, user, first["id"], timeout_s=60)
    third = create_model(stack, user, photo_ids)
    assert third.status_code == 409 and third.json()["code"] == "model_limit_reached"
    rows = stack.admin_sql(
        "SELECT count(*) FROM training.models WHERE user_id = %s", f"user_{user}"
    )
    assert rows == [(1,)]  # nothing half-written
    assert balance(stack, user)["balance"] == STARTER_CREDITS - TRAINING_PRICE


def test_model_requests_are_checked_before_anything_is_written(stack: RunningStack) -> None:
    user = new_user("picky")
    other = new_user("other")
    mine = accepted_photo_ids(stack, user, 11)
    theirs = accepted_photo_ids(stack, other, 1)
    rejected = upload_photos(stack, user, [encode(Image.new("RGB", (800, 800), "gray"))])
    assert rejected[0]["status"] == "rejected"

    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"photo_ids": mine[:9]}, 422, "photo_count_invalid"),
        ({"photo_ids": mine[:10] + mine[:1]}, 422, "photo_ids_duplicate"),
        ({"photo_ids": mine[:9] + theirs}, 404, "photo_not_found"),
        ({"photo_ids": [*mine[:9], str(uuid.uuid4())]}, 404, "photo_not_found"),
        ({"photo_ids": [*mine[:9], "not-a-uuid"]}, 404, "photo_not_found"),
        ({"photo_ids": [*mine[:9], rejected[0]["id"]]}, 409, "photo_not_accepted"),
        ({"photo_ids": mine[:10], "preset": "turbo"}, 422, "validation_error"),
        # The rule is in the schema now (as the preset's values are): the edge refuses it.
        ({"photo_ids": mine[:10], "trigger_word": "has space"}, 422, "validation_error"),
        ({"photo_ids": mine[:10], "name": " "}, 422, "name_invalid"),
    ]
    for body, status, code in cases:
        response = create_model(stack, user, **{"photo_ids": body.pop("photo_ids")}, **body)
        assert (response.status_code, response.json().get("code")) == (status, code), (
            body,
            response.text,
        )
    rows = stack.admin_sql(
        "SELECT count(*) FROM training.models WHERE user_id = %s", f"user_{user}"
    )
    assert rows == [(0,)]
    outbox = stack.admin_sql(
        "SELECT count(*) FROM training.outbox WHERE payload->>'user_id' = %s", f"user_{user}"
    )
    assert outbox == [(0,)]


def test_upload_requests_are_checked(stack: RunningStack) -> None:
    user = new_user("uploader")
    with api(stack, user) as c:
        for body in (
            {"photos": []},
            {"photos": [{"content_type": "image/jpeg"}] * 31},
            {"photos": [{"content_type": "image/gif"}]},
            {"photos": [{"content_type": "image/jpeg"}], "face_policy": "maybe"},
        ):
            r = c.post("/v1/photos/uploads", json=body)
            assert r.status_code == 422, (body, r.text)
    # Completing a photo that was never uploaded.
    upload = request_uploads(stack, user, ["image/jpeg"])[0]
    r = complete(stack, user, upload["photo_id"])
    assert r.status_code == 409 and r.json()["code"] == "photo_not_uploaded"


def test_the_s3_policy_refuses_oversized_mistyped_and_misplaced_uploads(
    stack: RunningStack,
) -> None:
    user = new_user("sneaky")
    upload = request_uploads(stack, user, ["image/jpeg"])[0]
    assert upload["max_bytes"] == 20 * 1024 * 1024
    too_big = post_to_s3(upload, b"\xff\xd8" + b"\0" * (20 * 1024 * 1024), "image/jpeg")
    assert too_big.status_code in (400, 403), too_big.text
    # The stored object's type is the policy's form field, fixed by the signed policy.
    as_html = dict(upload, fields=dict(upload["fields"], **{"Content-Type": "text/html"}))
    wrong_type = post_to_s3(as_html, face_photo(1), "text/html")
    assert wrong_type.status_code in (400, 403), wrong_type.text
    # The policy names one exact key: not another user's, not a sibling of its own.
    own = upload["fields"]["key"]
    for key in (f"uploads/user_victim/{uuid.uuid4()}", f"{own}.jpg", f"{own}/more"):
        elsewhere = dict(upload, fields=dict(upload["fields"], key=key))
        misplaced = post_to_s3(elsewhere, face_photo(1), "image/jpeg")
        assert misplaced.status_code in (400, 403), (key, misplaced.text)
        assert not object_exists(stack, key)
    r = complete(stack, user, upload["photo_id"])
    assert r.status_code == 409 and r.json()["code"] == "photo_not_uploaded"


def test_an_oversize_upload_is_answered_with_the_limit(stack: RunningStack) -> None:
    user = new_user("oversize")
    upload = request_uploads(stack, user, ["image/jpeg"])[0]
    limit = upload["max_bytes"]
    # S3 refuses it by the policy...
    refused = post_to_s3(upload, b"\xff\xd8" + b"\0" * limit, "image/jpeg")
    assert refused.status_code == 400 and "EntityTooLarge" in refused.text, refused.text
    # ...and one put there by other means is refused at completion, naming the limit.
    key = upload["fields"]["key"]
    storage(stack).client.put_object(
        storage(stack).bucket, key, io.BytesIO(b"\0" * (limit + 1)), limit + 1
    )
    r = complete(stack, user, upload["photo_id"])
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["code"] == "photo_too_large"
    assert (problem["max_bytes"], problem["max_size"]) == (20971520, "20 MiB")
    assert "photos are at most 20 MiB (20971520 bytes)" in problem["detail"]
    assert not object_exists(stack, key)


def test_an_upload_posted_again_after_complete_is_swept(stack: RunningStack) -> None:
    user = new_user("again")
    upload = request_uploads(stack, user, ["image/jpeg"])[0]
    original = face_photo(2)
    assert post_to_s3(upload, original, "image/jpeg").status_code in (200, 204)
    verdict = complete(stack, user, upload["photo_id"]).json()
    key = upload["fields"]["key"]
    assert not object_exists(stack, key)

    # The policy cannot be revoked: S3 stores the original again until the policy expires.
    assert post_to_s3(upload, original, "image/jpeg").status_code in (200, 204)

    # Nothing reads it, and the upload sweep removes it.
    again = complete(stack, user, upload["photo_id"]).json()
    assert (again["status"], again["reasons"]) == (verdict["status"], verdict["reasons"])
    wait_for("the re-posted original swept", lambda: object_exists(stack, key), lambda e: not e)


def _bomb_png() -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def _polyglot() -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("payload.html", "<script>alert(1)</script>")
    return face_photo(4) + archive.getvalue()


def test_bad_files_get_a_reason_each_and_their_originals_are_deleted(
    stack: RunningStack,
) -> None:
    user = new_user("badfiles")
    truncated = face_photo(3)[: len(face_photo(3)) // 2]
    cases = [
        (b"%PDF-1.7 not a photo at all" * 50, "rejected", ["not_an_image"]),
        (encode(astronaut(), "GIF"), "rejected", ["unsupported_type"]),
        (truncated, "rejected", ["truncated"]),
        (_bomb_png(), "rejected", ["too_many_pixels"]),
        (encode(astronaut().resize((300, 300))), "rejected", ["too_small"]),
        (_polyglot(), "accepted_with_warnings", ["trailing_data"]),
    ]
    uploads = request_uploads(stack, user, ["image/jpeg"] * len(cases))
    owner = storage_owner(stack, "training", f"user_{user}")
    for upload, (blob, status, reasons) in zip(uploads, cases, strict=True):
        assert post_to_s3(upload, blob, "image/jpeg").status_code in (200, 204)
        verdict = complete(stack, user, upload["photo_id"]).json()
        assert (verdict["status"], verdict["reasons"]) == (status, reasons), verdict
        assert not object_exists(stack, f"uploads/{owner}/{upload['photo_id']}")
        stored = object_exists(stack, f"photos/{owner}/{upload['photo_id']}.jpg")
        assert stored == (status != "rejected")
        # Completing again answers the same verdict.
        again = complete(stack, user, upload["photo_id"]).json()
        assert (again["status"], again["reasons"]) == (status, reasons)
    # The polyglot's zip never reached storage: the stored photo is a plain JPEG.
    s = storage(stack)
    clean = s.client.get_object(s.bucket, f"photos/{owner}/{uploads[-1]['photo_id']}.jpg").read()
    assert b"payload.html" not in clean and clean.endswith(b"\xff\xd9")


def test_duplicates_and_face_policy(stack: RunningStack) -> None:
    user = new_user("dupes")
    first, again = upload_photos(stack, user, [face_photo(5), face_photo(5)])
    assert first["status"] == "accepted"
    assert (again["status"], again["reasons"]) == ("rejected", ["duplicate"])
    landscape = encode(Image.effect_noise((900, 700), 60).convert("RGB"))
    required = upload_photos(stack, user, [landscape])[0]
    assert (required["status"], required["reasons"]) == ("rejected", ["no_face"])
    flagged = upload_photos(stack, user, [landscape], face_policy="flag")[0]
    assert flagged["status"] == "accepted_with_warnings" and "no_face" in flagged["reasons"]


def test_photos_list_get_and_delete(stack: RunningStack) -> None:
    user = new_user("album")
    ids = accepted_photo_ids(stack, user, 3)
    with api(stack, user) as c:
        page = c.get("/v1/photos", params={"limit": 2}).json()
        assert len(page["photos"]) == 2 and page["next_cursor"]
        rest = c.get("/v1/photos", params={"limit": 2, "cursor": page["next_cursor"]}).json()
        assert {p["id"] for p in page["photos"] + rest["photos"]} == set(ids)
        one = c.get(f"/v1/photos/{ids[0]}").json()
        preview = httpx.get(one["preview_url"])
        assert preview.status_code == 200 and preview.content[:2] == b"\xff\xd8"
        assert c.delete(f"/v1/photos/{ids[0]}").status_code == 204
        assert c.get(f"/v1/photos/{ids[0]}").status_code == 404
    owner = storage_owner(stack, "training", f"user_{user}")
    assert not object_exists(stack, f"photos/{owner}/{ids[0]}.jpg")


def test_another_users_photos_and_models_are_not_found(stack: RunningStack) -> None:
    owner = funded_user(stack, "owner")
    intruder = new_user("intruder")
    photo_ids = accepted_photo_ids(stack, owner, 10)
    model = create_model(stack, owner, photo_ids).json()
    wait_model(stack, owner, model["id"])
    with api(stack, intruder) as c:
        mid, pid = model["id"], photo_ids[0]
        for response in (
            c.get(f"/v1/models/{mid}"),
            c.patch(f"/v1/models/{mid}", json={"name": "mine now"}),
            c.post(f"/v1/models/{mid}/cancel"),
            c.delete(f"/v1/models/{mid}"),
            c.get(f"/v1/photos/{pid}"),
            c.post(f"/v1/photos/{pid}/complete"),
            c.delete(f"/v1/photos/{pid}"),
        ):
            assert response.status_code == 404, (response.request.url, response.text)
        assert c.get("/v1/models").json()["models"] == []
        assert c.get("/v1/photos").json()["photos"] == []
    assert get_model(stack, owner, model["id"])["name"] == "Me"


# --- webhooks ---------------------------------------------------------------------------------


def _sign(
    body: bytes, webhook_id: str, timestamp: int, secret: str = DEFAULT_WEBHOOK_SECRET
) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def _post_webhook(
    stack: RunningStack, body: bytes, webhook_id: str, timestamp: int, signature: str
) -> httpx.Response:
    return httpx.post(
        f"{stack.url}/webhooks/replicate",
        content=body,
        headers={
            "content-type": "application/json",
            "webhook-id": webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature,
        },
    )


def test_forged_stale_and_replayed_webhooks_change_nothing(stack: RunningStack) -> None:
    user, photo_ids = ready_to_train(stack, "hooked")
    emulator(stack, "config", {"training_duration_s": 60})
    model = create_model(stack, user, photo_ids).json()
    wait_model(stack, user, model["id"], lambda m: m["status"] in ("queued", "training"))
    provider_id = model_row(stack, model["id"])["provider_training_id"]
    forged_success = json.dumps(
        {
            "id": provider_id,
            "model": "ostris/flux-dev-lora-trainer",
            "version": "x",
            "status": "succeeded",
            "output": {"version": "evil/model:abc", "weights": "http://127.0.0.1:1/evil.tar"},
        }
    ).encode()
    now = int(time.time())

    def count() -> int:
        return int(stack.admin_sql("SELECT count(*) FROM training.replicate_webhooks")[0][0])  # type: ignore[call-overload]

    before = count()
    wid = f"msg_{uuid.uuid4().hex}"
    cases = [
        _post_webhook(
            stack,
            forged_success,
            wid,
            now,
            _sign(forged_success, wid, now, "whsec_" + base64.b64encode(b"k" * 32).decode()),
        ),
        _post_webhook(stack, forged_success, wid, now, _sign(forged_success + b" ", wid, now)),
        _post_webhook(stack, forged_success, wid, now - 600, _sign(forged_success, wid, now - 600)),
        _post_webhook(stack, forged_success, wid, now + 600, _sign(forged_success, wid, now + 600)),
        httpx.post(f"{stack.url}/webhooks/replicate", content=forged_success),
    ]
    assert [r.status_code for r in cases] == [400] * 5, [r.text for r in cases]
    assert cases[2].json()["code"] == "timestamp_too_old"
    assert cases[3].json()["code"] == "timestamp_too_new"
    assert cases[4].json()["code"] == "signature_missing"
    assert count() == before
    assert get_model(stack, user, model["id"])["status"] in ("queued", "training")

    # A delivery the provider really signed, replayed: applied once, the replay a duplicate.
    emulator(stack, f"trainings/{provider_id}/finish", {"status": "failed", "error": "OOM"})
    failed = wait_model(stack, user, model["id"])
    assert failed["status"] == "failed" and failed["failure"]["message"] == "OOM"
    wait_balance(stack, user, STARTER_CREDITS)
    webhook_id = stack.admin_sql(
        "SELECT webhook_id FROM training.replicate_webhooks "
        "WHERE provider_id = %s AND status = 'failed'",
        provider_id,
    )[0][0]
    replayed = emulator(stack, f"deliveries/{webhook_id}/redeliver")
    assert replayed["status_code"] == 200
    # A genuinely signed but stale update ("succeeded" after the failure) is ignored too.
    late_id = f"msg_{uuid.uuid4().hex}"
    events_before = rows_naming(stack.admin_sql, "training", model["id"])["outbox"]
    late = _post_webhook(stack, forged_success, late_id, now, _sign(forged_success, late_id, now))
    assert late.status_code == 200 and late.json()["duplicate"] is False
    # A webhook is applied in the transaction that stores it, before it is answered: the
    # stale update scheduled no step and raised no event (nothing for billing to capture).
    assert rows_naming(stack.admin_sql, "training", model["id"])["outbox"] == events_before
    after = get_model(stack, user, model["id"])
    assert after["status"] == "failed" and after["version"] is None
    assert model_row(stack, model["id"])["work"] is None
    assert [e["kind"] for e in ledger(stack, user)].count("release") == 1
    assert balance(stack, user) == {
        "balance": STARTER_CREDITS,
        "held": 0,
        "available": STARTER_CREDITS,
    }
