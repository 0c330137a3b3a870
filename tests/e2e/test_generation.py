"""Generation end to end: a trained model, the prompt checked (and enriched) by prompts,
billing's hold, a Replicate prediction through the real SDK against the emulator, signed
webhooks, every output copied into our storage with a thumbnail and a BlurHash, and credits
captured per image delivered."""

from __future__ import annotations

import io
import uuid
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.e2e.test_billing import balance, buy_starter, ledger, wait_balance
from tests.e2e.training_helpers import (
    api,
    emulator,
    get_json,
    replicate_get,
    replicate_url,
    storage,
    storage_owner,
    trained_model,
    wait_model,
)
from tests.support.rows import rows_naming
from tests.support.stack import RunningStack
from tests.support.waiting import wait_for
from visiona.emulators.anthropic import REFUSAL_MARKER

STARTER = 200
TRAINING = 150
IMAGE = 4
AFTER_TRAINING = STARTER - TRAINING
TERMINAL = ("succeeded", "failed", "canceled")


def anthropic_url(stack: RunningStack) -> str:
    return f"http://127.0.0.1:{stack.cfg.ports['anthropic']}"


def ready_owner(stack: RunningStack, name: str = "artist") -> tuple[str, dict[str, Any]]:
    """A new user with a ready model and 50 credits left."""
    user = f"{name}{uuid.uuid4().hex[:8]}"
    buy_starter(stack, user)
    wait_balance(stack, user, STARTER)
    model = trained_model(stack, user)
    wait_balance(stack, user, AFTER_TRAINING)
    return user, model


def generate(stack: RunningStack, user: str, **body: Any) -> httpx.Response:
    with api(stack, user) as c:
        return c.post("/v1/generations", json={"prompt": "me on a beach at sunset", **body})


def get_generation(stack: RunningStack, user: str, gen_id: str) -> dict[str, Any]:
    return get_json(stack, user, f"/v1/generations/{gen_id}")


def wait_generation(
    stack: RunningStack, user: str, gen_id: str, timeout_s: float = 60
) -> dict[str, Any]:
    return dict(
        wait_for(
            f"generation {gen_id} to finish",
            lambda: get_generation(stack, user, gen_id),
            lambda g: g["status"] in TERMINAL,
            timeout_s=timeout_s,
        )
    )


def row(stack: RunningStack, gen_id: str) -> dict[str, Any]:
    rows = stack.admin_sql(
        "SELECT row_to_json(g) FROM generation.generations g WHERE id = %s", uuid.UUID(gen_id)
    )
    return dict(rows[0][0])  # type: ignore[call-overload]


def prediction_started(stack: RunningStack, gen_id: str, timeout_s: float = 40) -> str:
    """Once the generation's prediction runs at the provider: its id."""
    return str(
        wait_for(
            "the prediction to start",
            lambda: row(stack, gen_id)["provider_prediction_id"],
            lambda v: v is not None,
            timeout_s=timeout_s,
        )
    )


def ingest_under_way(stack: RunningStack, gen_id: str) -> None:
    """Wait until a worker holds the generation's ingest (copying the outputs)."""
    wait_for(
        "the ingest to be under way",
        lambda: row(stack, gen_id),
        lambda r: r["work"] == "ingest" and r["lease_until"] is not None,
        timeout_s=40,
    )


def test_generate_four_images_stored_with_thumbnails_and_paid_per_image(
    stack: RunningStack, owner: tuple[str, dict[str, Any]]
) -> None:
    user, model = owner
    created = generate(stack, user, model_id=model["id"], num_outputs=4, aspect_ratio="3:2")
    assert created.status_code == 202, created.text
    gen = created.json()
    assert gen["status"] == "awaiting_credits" and gen["num_outputs"] == 4
    assert model["trigger_word"] in gen["final_prompt"]

    done = wait_generation(stack, user, gen["id"])
    assert done["status"] == "succeeded", done
    assert done["delivered"] == 4 and len(done["images"]) == 4
    assert [i["index"] for i in done["images"]] == [0, 1, 2, 3]
    s = storage(stack)
    for image in done["images"]:
        full = httpx.get(image["url"])
        assert full.status_code == 200
        assert Image.open(io.BytesIO(full.content)).format == "WEBP"
        assert image["width"] > image["height"]  # 3:2
        thumb = Image.open(io.BytesIO(httpx.get(image["thumbnail_url"]).content))
        assert thumb.format == "WEBP" and max(thumb.size) <= 512
        assert len(image["blurhash"]) >= 6
        download = httpx.get(image["download_url"])
        assert "attachment" in download.headers["content-disposition"]
        owner = storage_owner(stack, "generation", f"user_{user}")
        key = f"images/{owner}/{gen['id']}/{image['index']}.webp"
        assert s.client.stat_object(s.bucket, key).size == image["size_bytes"]
    # Our copies outlive the provider's URLs.
    emulator(stack, "expire-outputs")
    assert httpx.get(done["images"][0]["url"]).status_code == 200

    after = wait_balance(stack, user, AFTER_TRAINING - 4 * IMAGE)
    assert after["held"] == 0
    kinds = [(e["kind"], e["delta_balance"]) for e in ledger(stack, user)[:2]]
    assert kinds == [("capture", -4 * IMAGE), ("hold", 0)]

    with api(stack, user) as c:
        gallery = c.get("/v1/images", params={"model_id": model["id"]}).json()
        assert {i["id"] for i in gallery["images"]} == {i["id"] for i in done["images"]}
        first = done["images"][0]["id"]
        assert c.patch(f"/v1/images/{first}", json={"favourite": True}).json()["favourite"]
        favourites = c.get("/v1/images", params={"favourites": True}).json()["images"]
        assert [i["id"] for i in favourites] == [first]
        assert c.delete(f"/v1/images/{first}").status_code == 204
        assert c.get(f"/v1/images/{first}").status_code == 404
        assert len(c.get("/v1/images").json()["images"]) == 3


def test_expired_outputs_are_retried_then_released_never_charged(
    stack: RunningStack, owner: tuple[str, dict[str, Any]]
) -> None:
    user, model = owner
    # The webhook is held back until the provider's files are gone.
    emulator(stack, "config", {"paused_deliveries": True, "output_ttl_s": 0.2})
    gen = generate(stack, user, model_id=model["id"], num_outputs=2).json()
    wait_for(
        "the provider to finish",
        lambda: row(stack, gen["id"])["provider_status"],
        lambda s: s == "succeeded",
        timeout_s=40,
    )
    prediction = row(stack, gen["id"])["provider_prediction_id"]
    outputs = replicate_get(stack, f"/v1/predictions/{prediction}").json()["output"]
    wait_for(
        "the provider's files to expire",
        lambda: {httpx.get(url).status_code for url in outputs},
        lambda codes: codes == {404},
    )
    emulator(stack, "config", {"paused_deliveries": False})
    failed = wait_generation(stack, user, gen["id"])
    assert failed["status"] == "failed", failed
    assert failed["failure"]["reason"] == "outputs_unavailable"
    assert failed["delivered"] == 0 and failed["images"] == []
    assert row(stack, gen["id"])["work_attempts"] >= 2  # retried before giving up
    wait_for(
        "the hold released",
        lambda: balance(stack, user),
        lambda b: b == {"balance": AFTER_TRAINING, "held": 0, "available": AFTER_TRAINING},
    )


def test_lost_webhooks_are_made_up_for_by_the_reconciler(
    stack: RunningStack, owner: tuple[str, dict[str, Any]]
) -> None:
    user, model = owner
    emulator(stack, "config", {"drop_webhooks": True})
    gen = generate(stack, user, model_id=model["id"], num_outputs=1).json()
    done = wait_generation(stack, user, gen["id"], timeout_s=60)
    assert done["status"] == "succeeded" and done["delivered"] == 1
    wait_balance(stack, user, AFTER_TRAINING - IMAGE)


def test_provider_failure_releases_everything(
    stack: RunningStack, owner: tuple[str, dict[str, Any]]
) -> None:
    user, model = owner
    emulator(stack, "config", {"fail_next_predictions": 1})
    gen = generate(stack, user, model_id=model["id"], num_outputs=3).json()
    failed = wait_generation(stack, user, gen["id"])
    assert failed["status"] == "failed" and failed["failure"]["reason"] == "provider_failed"
    wait_for(
        "the hold released",
        lambda: balance(stack, user),
        lambda b: b["held"] == 0 and b["balance"] == AFTER_TRAINING,
    )


def test_cancel_releases_the_credits(
    stack: RunningStack, owner: tuple[str, dict[str, Any]]
) -> None:
    user, model = owner
    emulator(stack, "config", {"prediction_duration_s": 30})
    gen = generate(stack, user, model_id=model["id"], num_outputs=2).json()
    prediction_started(stack, gen["id"])
    with api(stack, user) as c:
        canceled = c.post(f"/v1/generations/{gen['id']}/cancel")
        assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
        again = c.post(f"/v1/generations/{gen['id']}/cancel")
        assert again.status_code == 409 and again.json()["code"] == "generation_finished"
    wait_for(
        "the hold released",
        lambda: balance(stack, user),
        lambda b: b["held"] == 0 and b["balance"] == AFTER_TRAINING,
    )
    wait_for("the provider told", lambda: row(stack, gen["id"])["work"], lambda w: w is None)


def test_one_generation_at_a_time_on_the_free_plan(
    stack: RunningStack, owner: tuple[str, dict[str, Any]]
) -> None:
    user, model = owner
    emulator(stack, "config", {"prediction_duration_s": 3})
    first = generate(stack, user, model_id=model["id"])
    assert first.status_code == 202
    second = generate(stack, user, model_id=model["id"])
    assert second.status_code == 409 and second.json()["code"] == "generation_limit_reached"
    wait_generation(stack, user, first.json()["id"])
    assert generate(stack, user, model_id=model["id"]).status_code == 202


def test_bad_requests_and_other_users_models_are_refused_before_anything_is_held(
    stack: RunningStack, owner: tuple[str, dict[str, Any]]
) -> None:
    user, model = owner
    intruder = f"intruder{uuid.uuid4().hex[:8]}"
    mid = model["id"]
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        (user, {"model_id": mid, "prompt": "x" * 2001}, 422, "validation_error"),
        (user, {"model_id": mid, "num_outputs": 5}, 422, "validation_error"),
        (user, {"model_id": mid, "num_outputs": 0}, 422, "validation_error"),
        (user, {"model_id": mid, "aspect_ratio": "7:3"}, 422, "validation_error"),
        (user, {"model_id": mid, "output_format": "gif"}, 422, "validation_error"),
        (user, {"model_id": mid, "pack": "no-such-pack"}, 422, "style_pack_not_found"),
        (user, {"model_id": str(uuid.uuid4())}, 404, "model_not_found"),
        (user, {"model_id": "not-a-uuid"}, 404, "model_not_found"),
        (intruder, {"model_id": mid}, 404, "model_not_found"),
    ]
    for who, body, status, code in cases:
        response = generate(stack, who, **body)
        assert (response.status_code, response.json().get("code")) == (status, code), (
            body,
            response.text,
        )
    rows = stack.admin_sql(
        "SELECT count(*) FROM generation.generations WHERE user_id = ANY(%s)",
        [f"user_{user}", f"user_{intruder}"],
    )
    assert rows == [(0,)]
    assert balance(stack, user)["held"] == 0


def test_a_model_that_is_not_ready_cannot_generate(stack: RunningStack) -> None:
    from tests.e2e.training_helpers import accepted_photo_ids, create_model, wait_model

    user = f"early{uuid.uuid4().hex[:8]}"
    photo_ids = accepted_photo_ids(stack, user, 10)
    model = create_model(stack, user, photo_ids).json()
    failed = wait_model(stack, user, model["id"])  # no credits: it fails
    assert failed["status"] == "failed"
    response = generate(stack, user, model_id=model["id"])
    assert response.status_code == 409 and response.json()["code"] == "model_not_ready"


def test_a_model_whose_provider_version_is_gone_becomes_unavailable_and_refuses_to_generate(
    stack: RunningStack, owner: tuple[str, dict[str, Any]]
) -> None:
    """The provider no longer has the trained version (deleted there, or an emulator that
    lost its state): the model says so, and generating with it is refused with a 4xx."""
    user, model = owner
    destination, _, version = model["version"].partition(":")
    gone = httpx.delete(
        f"{replicate_url(stack)}/v1/models/{destination}/versions/{version}",
        headers={"Authorization": f"Bearer {stack.cfg.replicate_api_token}"},
        timeout=10,
    )
    assert gone.status_code == 204, gone.text

    # The first try is accepted (the version is not asked about on every request): the
    # provider refuses the prediction, the generation fails as model_unavailable, nothing is
    # charged, and the model checks its version at once.
    first = generate(stack, user, model_id=model["id"])
    assert first.status_code == 202, first.text
    failed = wait_generation(stack, user, first.json()["id"])
    assert (failed["status"], failed["failure"]["reason"]) == ("failed", "model_unavailable")
    unavailable = wait_model(stack, user, model["id"], done=lambda m: m["status"] == "unavailable")
    assert unavailable["failure"]["reason"] == "provider_version_missing"
    assert "train the model again" in unavailable["failure"]["message"]
    wait_balance(stack, user, AFTER_TRAINING)
    assert balance(stack, user)["held"] == 0

    refused = generate(stack, user, model_id=model["id"])
    assert (refused.status_code, refused.json()["code"]) == (409, "model_unavailable")
    assert "train the model again" in refused.json()["detail"]
    # It stays listed, as unavailable, and can be deleted like any model.
    with api(stack, user) as c:
        listed = {m["id"]: m["status"] for m in c.get("/v1/models").json()["models"]}
        assert listed[model["id"]] == "unavailable"
        assert c.delete(f"/v1/models/{model['id']}").status_code in (202, 204)


def test_another_users_generations_and_images_are_not_found(
    stack: RunningStack, owner: tuple[str, dict[str, Any]]
) -> None:
    user, model = owner
    gen = generate(stack, user, model_id=model["id"]).json()
    done = wait_generation(stack, user, gen["id"])
    image_id = done["images"][0]["id"]
    with api(stack, f"peeker{uuid.uuid4().hex[:8]}") as c:
        for response in (
            c.get(f"/v1/generations/{gen['id']}"),
            c.post(f"/v1/generations/{gen['id']}/cancel"),
            c.get(f"/v1/images/{image_id}"),
            c.patch(f"/v1/images/{image_id}", json={"favourite": True}),
            c.delete(f"/v1/images/{image_id}"),
        ):
            assert response.status_code == 404, (response.request.url, response.text)
        assert c.get("/v1/images").json()["images"] == []
        assert c.get("/v1/generations").json()["generations"] == []


def test_llm_down_generates_with_the_users_own_prompt(
    stack: RunningStack, owner: tuple[str, dict[str, Any]]
) -> None:
    user, model = owner
    httpx.post(anthropic_url(stack) + "/_emulator/config", json={"fail_status": 529})
    created = generate(stack, user, model_id=model["id"], enhance=True, prompt="me in Lisbon")
    assert created.status_code == 202, created.text
    gen = created.json()
    assert gen["degraded"] is True and gen["enhanced"] is False
    assert "Lisbon" in gen["final_prompt"] and model["trigger_word"] in gen["final_prompt"]
    assert wait_generation(stack, user, gen["id"])["status"] == "succeeded"


def test_enhanced_prompt_keeps_the_trigger_word(
    stack: RunningStack, owner: tuple[str, dict[str, Any]]
) -> None:
    user, model = owner
    created = generate(stack, user, model_id=model["id"], enhance=True, prompt="me hiking")
    assert created.status_code == 202, created.text
    gen = created.json()
    assert gen["enhanced"] is True and gen["degraded"] is False
    assert model["trigger_word"] in gen["final_prompt"]
    assert gen["final_prompt"] != gen["prompt"]


@pytest.mark.parametrize(
    "prompt",
    ["me d3c@pitated, g.o.r.e", f"me with {REFUSAL_MARKER}"],
    ids=["rules", "llm"],
)
def test_a_refused_prompt_generates_nothing_and_charges_nothing(
    stack: RunningStack, owner: tuple[str, dict[str, Any]], prompt: str
) -> None:
    user, model = owner
    entries = len(ledger(stack, user))
    response = generate(stack, user, model_id=model["id"], prompt=prompt, enhance=True)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "prompt_refused"
    # Enhancing it is refused alike: the same moderation, the same answer.
    with api(stack, user) as c:
        enhanced = c.post("/v1/prompts/enhance", json={"prompt": prompt})
    assert enhanced.status_code == 422, enhanced.text
    assert {k: enhanced.json()[k] for k in ("code", "detail")} == {
        k: response.json()[k] for k in ("code", "detail")
    }
    # Whatever the refused request wrote had committed when it was answered: no generation
    # and no event, so nothing can be held later.
    assert rows_naming(stack.admin_sql, "generation", f"user_{user}") == {}
    assert balance(stack, user) == {
        "balance": AFTER_TRAINING,
        "held": 0,
        "available": AFTER_TRAINING,
    }
    assert len(ledger(stack, user)) == entries


def test_objects_no_row_names_are_swept_once_the_generation_has_ended(
    stack: RunningStack, owner: tuple[str, dict[str, Any]]
) -> None:
    """What a crash between an ingest's copy and its clean-up leaves behind: objects under a
    generation's folder that no image row names. They go once the generation has ended; the
    images of a finished generation stay."""
    user, model = owner
    kept = wait_generation(stack, user, generate(stack, user, model_id=model["id"]).json()["id"])
    assert kept["status"] == "succeeded"
    emulator(stack, "config", {"prediction_duration_s": 30})
    gen = generate(stack, user, model_id=model["id"], num_outputs=2).json()
    prediction_started(stack, gen["id"])
    s = storage(stack)
    folder = f"images/{storage_owner(stack, 'generation', f'user_{user}')}/{gen['id']}/"
    for name in ("0.webp", "0.thumb.webp"):
        s.client.put_object(s.bucket, folder + name, io.BytesIO(b"left over"), 9)
    with api(stack, user) as c:
        assert c.post(f"/v1/generations/{gen['id']}/cancel").status_code == 200
    wait_for(
        "the ended generation's folder to be swept",
        lambda: [
            o.object_name for o in s.client.list_objects(s.bucket, prefix=folder, recursive=True)
        ],
        lambda names: names == [],
    )
    for image in kept["images"]:
        assert httpx.get(image["url"]).status_code == 200
        assert httpx.get(image["thumbnail_url"]).status_code == 200
