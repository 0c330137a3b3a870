"""The Replicate emulator, driven through the real `replicate` SDK over real HTTP."""

from __future__ import annotations

import io
import json
import re
import tarfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import replicate
from fastapi import FastAPI, Request, Response
from PIL import Image
from replicate.client import Client
from replicate.exceptions import ReplicateError
from replicate.webhook import WebhookSigningSecret

from tests.support.waiting import wait_for
from visiona.emulators._server import running
from visiona.emulators.replicate import (
    DEFAULT_API_TOKEN,
    DEFAULT_OWNER,
    DEFAULT_TRAINER,
    DEFAULT_TRAINER_VERSION,
    DEFAULT_WEBHOOK_SECRET,
    Settings,
    create_app,
)

FAST = Settings(
    start_delay_s=0.02,
    training_duration_s=0.2,
    prediction_duration_s=0.1,
    log_interval_s=0.05,
    retry_delays_s=(0.05, 0.05, 0.05),
)
TRAINER_REF = f"{DEFAULT_TRAINER}:{DEFAULT_TRAINER_VERSION}"


@dataclass
class Receiver:
    """A local HTTP app: serves training zips and records webhooks it is sent."""

    base: str = ""
    fail_next: int = 0
    hits: list[tuple[dict[str, str], str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def webhooks(self) -> list[tuple[dict[str, str], Any]]:
        with self.lock:
            return [(h, json.loads(b)) for h, b in self.hits]


def _receiver_app(receiver: Receiver, images_zip: bytes) -> FastAPI:
    app = FastAPI()

    @app.get("/images.zip")
    async def images() -> Response:
        return Response(images_zip, media_type="application/zip")

    @app.get("/not-a-zip")
    async def not_a_zip() -> Response:
        return Response(b"hello", media_type="text/plain")

    @app.post("/hook")
    async def hook(request: Request) -> Response:
        body = (await request.body()).decode()
        with receiver.lock:
            receiver.hits.append((dict(request.headers), body))
            if receiver.fail_next > 0:
                receiver.fail_next -= 1
                return Response(status_code=500)
        return Response(status_code=204)

    return app


@pytest.fixture(scope="module")
def receiver(images_zip: bytes) -> Iterator[Receiver]:
    rec = Receiver()
    with running(_receiver_app(rec, images_zip)) as base:
        rec.base = base
        yield rec


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with running(create_app(FAST)) as url:
        yield url


@pytest.fixture(autouse=True)
def _clean(base: str, receiver: Receiver) -> None:
    httpx.post(f"{base}/_emulator/reset").raise_for_status()
    with receiver.lock:
        receiver.hits.clear()
        receiver.fail_next = 0


@pytest.fixture
def client(base: str) -> Client:
    return Client(api_token=DEFAULT_API_TOKEN, base_url=base)


def control(base: str, path: str, body: dict[str, Any] | None = None) -> Any:
    response = httpx.post(f"{base}/_emulator/{path}", json=body)
    response.raise_for_status()
    return response.json()


def eventually(check: Callable[[], Any], timeout_s: float = 5.0) -> Any:
    return wait_for("the condition", check, bool, timeout_s)


def make_destination(client: Client, name: str = "lora-alice") -> str:
    client.models.create(owner=DEFAULT_OWNER, name=name, visibility="private", hardware="gpu-h100")
    return f"{DEFAULT_OWNER}/{name}"


def start_training(
    client: Client, receiver: Receiver, images: str = "/images.zip", **extra: Any
) -> Any:
    return client.trainings.create(
        version=TRAINER_REF,
        input={"input_images": receiver.base + images, "trigger_word": "TOK", "steps": 1000},
        destination=make_destination(client),
        **extra,
    )


def wait_done(get: Callable[[], Any]) -> Any:
    return eventually(lambda: (obj := get()).status in ("succeeded", "failed", "canceled") and obj)


def test_a_wrong_token_is_rejected_with_401(base: str) -> None:
    bad = Client(api_token="r8_wrong", base_url=base)
    with pytest.raises(ReplicateError) as err:
        bad.trainings.list()
    assert err.value.status == 401


def test_models_are_created_read_and_deleted_only_without_versions(
    client: Client, base: str, receiver: Receiver
) -> None:
    model = client.models.create(
        owner=DEFAULT_OWNER, name="m1", visibility="private", hardware="gpu-h100"
    )
    assert (model.owner, model.name, model.run_count) == (DEFAULT_OWNER, "m1", 0)
    assert client.models.get(f"{DEFAULT_OWNER}/m1").latest_version is None
    with pytest.raises(ReplicateError) as dup:
        client.models.create(
            owner=DEFAULT_OWNER, name="m1", visibility="private", hardware="gpu-h100"
        )
    assert dup.value.status == 409

    training = client.trainings.create(
        version=TRAINER_REF,
        input={"input_images": receiver.base + "/images.zip"},
        destination=f"{DEFAULT_OWNER}/m1",
    )
    control(base, f"trainings/{training.id}/finish", {"status": "succeeded"})
    version_id = client.trainings.get(training.id).output["version"].split(":")[1]
    version = client.models.get(f"{DEFAULT_OWNER}/m1").versions.get(version_id)
    assert version.openapi_schema["components"]["schemas"]["Output"]["items"]["format"] == "uri"

    with pytest.raises(ReplicateError) as busy:
        client.models.delete(f"{DEFAULT_OWNER}/m1")
    assert busy.value.status == 409
    assert client.models.get(f"{DEFAULT_OWNER}/m1").versions.delete(version_id)
    assert client.models.delete(f"{DEFAULT_OWNER}/m1")
    with pytest.raises(ReplicateError) as gone:
        client.models.get(f"{DEFAULT_OWNER}/m1")
    assert gone.value.status == 404


def test_a_training_succeeds_with_a_new_version_and_downloadable_weights(
    client: Client, receiver: Receiver
) -> None:
    training = start_training(client, receiver)
    assert training.status == "starting"
    assert eventually(lambda: client.trainings.get(training.id).status == "processing")

    done = wait_done(lambda: client.trainings.get(training.id))

    assert done.status == "succeeded", done.error
    owner_name, version_id = done.output["version"].split(":")
    assert owner_name == f"{DEFAULT_OWNER}/lora-alice"
    assert len(version_id) == 64
    assert done.destination == owner_name
    assert done.started_at and done.completed_at and "| 1000/1000 [" in done.logs
    latest = client.models.get(owner_name).latest_version
    assert latest is not None and latest.id == version_id
    weights = httpx.get(done.output["weights"])
    assert weights.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(weights.content)) as tar:
        assert tar.getnames() == ["lora.safetensors"]
    assert [t.id for t in client.trainings.list().results] == [training.id]


def test_a_training_reports_rising_progress_as_the_trainer_prints_it(
    client: Client, base: str, receiver: Receiver
) -> None:
    control(base, "config", {"training_duration_s": 1.5, "log_interval_s": 0.1})
    training = start_training(client, receiver)
    seen: list[str] = []

    def progress_lines() -> list[str]:
        current = client.trainings.get(training.id)
        seen.append(current.status)
        return [line for line in (current.logs or "").splitlines() if "it/s]" in line]

    lines = wait_for("three progress lines", progress_lines, lambda found: len(found) >= 3)

    assert seen[0] in ("starting", "processing") and seen[-1] == "processing"
    parsed = [re.search(r"(\d+)%\|.{10}\| (\d+)/(\d+) \[", line) for line in lines]
    assert all(parsed), lines
    percents = [int(m[1]) for m in parsed if m]
    steps = [int(m[2]) for m in parsed if m]
    assert percents == sorted(percents) and percents[0] < percents[-1] < 100, lines
    assert steps == sorted(steps) and {m[3] for m in parsed if m} == {"1000"}, lines
    assert wait_done(lambda: client.trainings.get(training.id)).status == "succeeded"


@pytest.mark.parametrize(
    ("images", "error"), [("/missing.zip", "HTTP 404"), ("/not-a-zip", "not a zip")]
)
def test_a_training_fails_when_input_images_cannot_be_used(
    client: Client, receiver: Receiver, images: str, error: str
) -> None:
    training = start_training(client, receiver, images)

    done = wait_done(lambda: client.trainings.get(training.id))

    assert done.status == "failed"
    assert error in done.error


def test_a_training_needs_an_existing_destination_and_input_images(
    client: Client, receiver: Receiver
) -> None:
    with pytest.raises(ReplicateError) as missing_model:
        client.trainings.create(
            version=TRAINER_REF,
            input={"input_images": receiver.base + "/images.zip"},
            destination=f"{DEFAULT_OWNER}/nope",
        )
    assert missing_model.value.status == 404
    with pytest.raises(ReplicateError) as missing_input:
        client.trainings.create(version=TRAINER_REF, input={}, destination=make_destination(client))
    assert missing_input.value.status == 422


def test_canceling_a_training_ends_it_and_a_second_cancel_changes_nothing(
    client: Client, receiver: Receiver
) -> None:
    training = start_training(client, receiver)

    canceled = client.trainings.cancel(training.id)
    again = client.trainings.cancel(training.id)

    assert canceled.status == "canceled" and canceled.completed_at
    assert again.completed_at == canceled.completed_at
    # A training started after it, on the same timings, has run to its end: the canceled
    # one would have finished by now, had the cancel not stopped it.
    later = client.trainings.create(
        version=TRAINER_REF,
        input={"input_images": receiver.base + "/images.zip", "trigger_word": "TOK"},
        destination=make_destination(client, "lora-later"),
    )
    assert wait_done(lambda: client.trainings.get(later.id)).status == "succeeded"
    assert client.trainings.get(training.id).status == "canceled"


def test_fail_next_trainings_makes_the_next_training_fail(
    client: Client, base: str, receiver: Receiver
) -> None:
    control(base, "config", {"fail_next_trainings": 1})
    training = start_training(client, receiver)

    done = wait_done(lambda: client.trainings.get(training.id))

    assert (done.status, done.error) == ("failed", "emulated failure")
    assert httpx.get(f"{base}/_emulator/config").json()["fail_next_trainings"] == 0


def test_an_applied_training_is_listed_at_once_while_its_answer_is_held_back(
    client: Client, base: str, receiver: Receiver
) -> None:
    control(base, "config", {"answer_delay_ms": 2000})
    creating = threading.Thread(target=lambda: start_training(client, receiver))
    creating.start()
    try:
        held = eventually(lambda: httpx.get(f"{base}/_emulator/trainings").json())
        assert creating.is_alive()  # the creator has not had its answer yet
        assert len(held) == 1
    finally:
        creating.join()
        control(base, "config", {"answer_delay_ms": 0})


def test_a_prediction_answers_num_outputs_images_in_the_requested_format(
    client: Client,
) -> None:
    prediction = client.predictions.create(
        version=DEFAULT_TRAINER_VERSION,
        input={"prompt": "TOK on a beach", "num_outputs": 3, "output_format": "png"},
    )
    done = wait_done(lambda: client.predictions.get(prediction.id))

    assert done.status == "succeeded"
    assert len(done.output) == 3
    images = [httpx.get(url) for url in done.output]
    assert all(r.status_code == 200 and r.headers["content-type"] == "image/png" for r in images)
    assert {Image.open(io.BytesIO(r.content)).format for r in images} == {"PNG"}
    assert len({r.content for r in images}) == 3


def test_prefer_wait_answers_the_finished_prediction(client: Client) -> None:
    prediction = client.models.predictions.create(
        model=DEFAULT_TRAINER, input={"prompt": "x", "output_format": "jpg"}, wait=5
    )

    assert prediction.status == "succeeded"
    (url,) = prediction.output
    assert url.endswith("/0.jpg")
    assert Image.open(io.BytesIO(httpx.get(url).content)).format == "JPEG"


def test_more_than_four_outputs_is_rejected_with_422(client: Client) -> None:
    with pytest.raises(ReplicateError) as err:
        client.predictions.create(
            version=DEFAULT_TRAINER_VERSION, input={"prompt": "x", "num_outputs": 5}
        )
    assert err.value.status == 422


def test_output_files_expire(client: Client, base: str) -> None:
    done = client.predictions.create(version=TRAINER_REF, input={"prompt": "x"}, wait=5)
    (url,) = done.output
    assert httpx.get(url).status_code == 200

    control(base, "expire-outputs")
    assert httpx.get(url).status_code == 404

    control(base, "config", {"output_ttl_s": 0.1})
    short = client.predictions.create(version=TRAINER_REF, input={"prompt": "y"}, wait=5)
    eventually(lambda: httpx.get(short.output[0]).status_code == 404)


def test_training_webhooks_are_signed_and_cover_start_and_completed(
    client: Client, receiver: Receiver
) -> None:
    training = start_training(
        client, receiver, webhook=receiver.base + "/hook", webhook_events_filter=["completed"]
    )

    eventually(lambda: any(b["status"] == "succeeded" for _, b in receiver.webhooks()))
    hits = receiver.webhooks()

    assert [body["status"] for _, body in hits] == ["starting", "succeeded"]
    assert all(body["id"] == training.id for _, body in hits)
    for headers, _ in hits:
        assert headers["webhook-id"].startswith("msg_")
    with receiver.lock:
        raw_hits = list(receiver.hits)
    for headers, raw in raw_hits:
        replicate.webhooks.validate(
            headers=headers,
            body=raw,
            secret=WebhookSigningSecret(key=DEFAULT_WEBHOOK_SECRET),
            tolerance=300,
        )
    assert len({h["webhook-id"] for h, _ in hits}) == 2


def test_a_failed_webhook_is_retried_with_the_same_id(
    client: Client, base: str, receiver: Receiver
) -> None:
    # The prediction outlasts start's retries (0.2 s + 0.5 s), so the two failures both hit
    # the start event; retries run beside later events, so only ids are compared, not order.
    control(base, "config", {"prediction_duration_s": 3.0})
    receiver.fail_next = 2
    prediction = client.predictions.create(
        version=TRAINER_REF,
        input={"prompt": "x"},
        webhook=receiver.base + "/hook",
        webhook_events_filter=["completed"],
    )

    eventually(lambda: len(receiver.webhooks()) >= 4, timeout_s=10)

    hits = receiver.webhooks()
    first = hits[0][0]["webhook-id"]
    assert sum(1 for h, _ in hits if h["webhook-id"] == first) == 3
    deliveries = httpx.get(f"{base}/_emulator/deliveries").json()
    start = [d for d in deliveries if d["event"] == "start"]
    assert [d["status_code"] for d in start] == [500, 500, 204]
    assert {d["object_id"] for d in deliveries} == {prediction.id}


def test_dropped_webhooks_are_recorded_but_not_sent_and_can_be_redelivered(
    client: Client, base: str, receiver: Receiver
) -> None:
    control(base, "config", {"drop_webhooks": True})
    prediction = client.predictions.create(
        version=TRAINER_REF,
        input={"prompt": "x"},
        webhook=receiver.base + "/hook",
        webhook_events_filter=["completed"],
        wait=5,
    )
    assert prediction.status == "succeeded"
    deliveries = httpx.get(f"{base}/_emulator/deliveries").json()
    completed = next(d for d in deliveries if d["event"] == "completed")
    assert completed["status_code"] is None and "dropped" in completed["error"]
    assert receiver.webhooks() == []

    replay = control(base, f"deliveries/{completed['webhook_id']}/redeliver")

    assert replay["status_code"] == 204
    ((headers, body),) = receiver.webhooks()
    assert headers["webhook-id"] == completed["webhook_id"]
    assert body["status"] == "succeeded"


def test_files_are_uploaded_read_and_deleted(client: Client) -> None:
    created = client.files.create(io.BytesIO(b"zip bytes"), filename="images.zip")

    assert created.size == 9 and created.name == "images.zip"
    assert client.files.get(created.id).checksums["sha256"] == created.checksums["sha256"]
    assert client.files.delete(created.id)
    with pytest.raises(ReplicateError):
        client.files.get(created.id)


def test_the_default_webhook_secret_is_the_configured_one(client: Client) -> None:
    assert client.webhooks.default.secret().key == DEFAULT_WEBHOOK_SECRET
