"""The emulators keep their state across restarts, as the providers do: what the official
SDKs made before a stop or a SIGKILL is there after, and an emulator killed mid-write comes
back with its last complete state."""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
import stripe
from fastapi import FastAPI, Request, Response
from replicate.client import Client
from replicate.exceptions import ReplicateError
from replicate.training import Training

from tests.support.emulator_process import EmulatorProcess
from tests.support.waiting import wait_for
from visiona.emulators._server import running
from visiona.emulators._state import StateFile
from visiona.emulators.replicate import DEFAULT_API_TOKEN, DEFAULT_TRAINER, DEFAULT_TRAINER_VERSION
from visiona.emulators.stripe import DEFAULT_WEBHOOK_SECRET
from visiona.emulators.stripe import Settings as StripeSettings
from visiona.emulators.stripe import create_app as create_stripe_app

STRIPE_KEY = "sk_test_visiona_local"
CLERK_KEY = "sk_test_visiona_local"
TRAINER_REF = f"{DEFAULT_TRAINER}:{DEFAULT_TRAINER_VERSION}"


# --- the state file ---------------------------------------------------------------------------


def test_a_sync_writes_what_changed_and_a_reopened_file_holds_it_in_order(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    state = StateFile(path)
    docs: dict[str, dict[str, Any]] = {"things": {"b": {"n": 1}, "a": {"n": 2}}, "log": {}}
    assert state.sync(docs) == 2
    assert state.sync(docs) == 0
    docs["things"]["a"]["n"] = 3
    docs["log"]["e1"] = {"what": "happened"}
    assert state.sync(docs, lambda kind, _doc: kind == "log") == 2
    del docs["things"]["b"]
    assert state.sync(docs) == 1
    state.put_blob("files/x", b"\x00\x01")
    state.close()

    again = StateFile(path)
    assert again.load() == {"things": {"a": {"n": 3}}, "log": {"e1": {"what": "happened"}}}
    assert again.blob("files/x") == b"\x00\x01"
    assert again.sync({"things": {"a": {"n": 3}}, "log": {"e1": {"what": "happened"}}}) == 0
    again.close()
    assert StateFile(path, fresh=True).load() == {}


WRITER = """
import sys
from pathlib import Path
from visiona.emulators._state import StateFile

state = StateFile(Path(sys.argv[1]))
generation = 0
while True:
    generation += 1
    state.sync({"docs": {str(i): {"generation": generation, "pad": "x" * 500} for i in range(300)}})
"""


def test_a_process_killed_mid_write_leaves_its_last_complete_sync(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    rnd = random.Random(7)
    for _ in range(5):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)])
        time.sleep(0.3 + rnd.random() * 0.7)  # let it write a while, then kill it mid-flight
        writer.kill()
        writer.wait()
        docs = StateFile(path).load().get("docs", {})
        generations = {doc["generation"] for doc in docs.values()}
        assert len(docs) == 300 and len(generations) == 1, (len(docs), generations)


# --- a receiver: training images and webhooks ---------------------------------------------------


@dataclass
class Receiver:
    base: str = ""
    failing: bool = False
    hooks: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self) -> list[Any]:
        with self.lock:
            return [json.loads(body) for _, body in self.hooks]


@pytest.fixture
def receiver(images_zip: bytes) -> Iterator[Receiver]:
    rec = Receiver()
    app = FastAPI()

    @app.get("/images.zip")
    async def images() -> Response:
        return Response(images_zip, media_type="application/zip")

    @app.post("/hook")
    async def hook(request: Request) -> Response:
        if rec.failing:
            return Response(status_code=500)
        body = await request.body()
        with rec.lock:
            rec.hooks.append((dict(request.headers), body))
        return Response(status_code=204)

    with running(app) as base:
        rec.base = base
        yield rec


def new_emulator(
    started: list[EmulatorProcess], tmp_path: Path, name: str, *args: str, **env: str
) -> EmulatorProcess:
    """``name``'s emulator, started with its state in ``tmp_path/state``."""
    emulator = EmulatorProcess(name, tmp_path / "state", list(args), dict(env))
    started.append(emulator)
    emulator.start()
    return emulator


# --- Stripe -------------------------------------------------------------------------------------


def stripe_client(emulator: EmulatorProcess) -> stripe.StripeClient:
    return stripe.StripeClient(
        STRIPE_KEY,
        base_addresses={"api": emulator.url},
        http_client=stripe.HTTPXClient(allow_sync_methods=True),
        max_network_retries=0,
    )


def pay(session_url: str) -> dict[str, Any]:
    paid = httpx.post(
        f"{session_url}/pay",
        json={"outcome": "paid"},
        headers={"Accept": "application/json"},
        timeout=10,
    )
    assert paid.status_code == 200, paid.text
    return dict(paid.json())


def checkout(
    client: stripe.StripeClient,
    mode: Literal["payment", "subscription"],
    price_id: str,
    customer_id: str | None = None,
) -> stripe.checkout.Session:
    """A Checkout Session for one of ``price_id``, for ``customer_id`` when given."""
    params: stripe.params.checkout.SessionCreateParams = {
        "mode": mode,
        "line_items": [{"price": price_id, "quantity": 1}],
        "success_url": "http://localhost/ok",
    }
    if customer_id is not None:
        params["customer"] = customer_id
    return client.v1.checkout.sessions.create(params=params)


@pytest.mark.parametrize("how", ["stopped", "killed"])
def test_stripe_keeps_customers_payments_subscriptions_and_events(
    emulator_processes: list[EmulatorProcess], tmp_path: Path, how: str
) -> None:
    emulator = new_emulator(emulator_processes, tmp_path, "stripe")
    client = stripe_client(emulator)
    customer = client.v1.customers.create(
        params={"email": "ada@example.com", "metadata": {"user_id": "user_ada"}},
        options={"idempotency_key": "create-ada"},
    )
    product = client.v1.products.create(params={"name": "Studio"})
    pack = client.v1.prices.create(
        params={"product": product.id, "unit_amount": 900, "currency": "usd"}
    )
    plan = client.v1.prices.create(
        params={
            "product": product.id,
            "unit_amount": 1900,
            "currency": "usd",
            "recurring": {"interval": "month"},
        }
    )
    bought = checkout(client, "payment", pack.id, customer.id)
    pay(str(bought.url))
    subscribed = checkout(client, "subscription", plan.id, customer.id)
    paid = pay(str(subscribed.url))
    refund = client.v1.refunds.create(
        params={
            "payment_intent": str(client.v1.checkout.sessions.retrieve(bought.id).payment_intent)
        }
    )
    subscription = client.v1.subscriptions.retrieve(str(paid["subscription"]))

    def snapshot() -> dict[str, Any]:
        return {
            "customer": client.v1.customers.retrieve(customer.id).to_dict(),
            "prices": sorted(p.id for p in client.v1.prices.list(params={"limit": 100}).data),
            "bought": client.v1.checkout.sessions.retrieve(bought.id).to_dict(),
            "subscribed": client.v1.checkout.sessions.retrieve(subscribed.id).to_dict(),
            "subscription": client.v1.subscriptions.retrieve(subscription.id).to_dict(),
            "invoice": client.v1.invoices.retrieve(str(subscription.latest_invoice)).to_dict(),
            "refund": client.v1.refunds.retrieve(refund.id).to_dict(),
            "events": [e.id for e in client.v1.events.list(params={"limit": 100}).data],
        }

    before = snapshot()
    assert before["bought"]["payment_status"] == "paid"
    assert before["subscription"]["status"] == "active"
    assert len(before["events"]) >= 5

    emulator.stop() if how == "stopped" else emulator.kill()
    emulator.start()

    assert snapshot() == before
    # An SDK retry of a create after the restart gets the same customer, not a second one.
    again = client.v1.customers.create(
        params={"email": "ada@example.com", "metadata": {"user_id": "user_ada"}},
        options={"idempotency_key": "create-ada"},
    )
    assert again.id == customer.id
    # And it goes on: a new customer gets a new id, listed after the old one.
    other = client.v1.customers.create(params={"email": "bob@example.com"})
    listed = [c.id for c in client.v1.customers.list(params={"limit": 10}).data]
    assert listed[:2] == [other.id, customer.id]


def test_stripe_keeps_the_events_of_the_last_30_days_as_stripe_does(tmp_path: Path) -> None:
    now = int(time.time())
    events = {
        eid: {"id": eid, "object": "event", "type": "invoice.paid", "created": created}
        for eid, created in (("evt_old", now - 31 * 24 * 3600), ("evt_recent", now - 3600))
    }
    state = StateFile(tmp_path / "stripe.sqlite3")
    state.sync({"events": events})
    state.close()

    app = create_stripe_app(StripeSettings(state_dir=tmp_path))

    assert list(app.state.store.events) == ["evt_recent"]


def test_a_stripe_event_not_yet_delivered_is_delivered_after_a_restart(
    emulator_processes: list[EmulatorProcess], tmp_path: Path, receiver: Receiver
) -> None:
    receiver.failing = True
    emulator = new_emulator(
        emulator_processes,
        tmp_path,
        "stripe",
        *("--webhook-url", f"{receiver.base}/hook"),
        STRIPE_EMULATOR_RETRY_DELAYS_S="600",
    )
    client = stripe_client(emulator)
    product = client.v1.products.create(params={"name": "Starter"})
    price = client.v1.prices.create(
        params={"product": product.id, "unit_amount": 900, "currency": "usd"}
    )
    session = checkout(client, "payment", price.id)
    pay(str(session.url))
    wait_for(
        "the first attempt to fail",
        lambda: httpx.get(f"{emulator.url}/_emulator/deliveries").json(),
        lambda attempts: len(attempts) == 1 and attempts[0]["status_code"] == 500,
    )
    emulator.kill()
    receiver.failing = False

    emulator.start()

    (event,) = wait_for("the event after the restart", receiver.bodies, lambda b: len(b) == 1)
    assert (event["type"], event["data"]["object"]["id"]) == (
        "checkout.session.completed",
        session.id,
    )
    (headers, body) = receiver.hooks[0]
    assert stripe.Webhook.construct_event(body, headers["stripe-signature"], DEFAULT_WEBHOOK_SECRET)
    wait_for(
        "nothing left to deliver",
        lambda: httpx.get(f"{emulator.url}/_emulator/deliveries/pending").json()["pending"],
        lambda pending: pending == 0,
    )


def test_a_fresh_start_forgets_everything(
    emulator_processes: list[EmulatorProcess], tmp_path: Path
) -> None:
    emulator = new_emulator(emulator_processes, tmp_path, "stripe")
    customer = stripe_client(emulator).v1.customers.create(params={"email": "gone@example.com"})
    emulator.stop()
    emulator.start("--fresh")
    with pytest.raises(stripe.InvalidRequestError) as missing:
        stripe_client(emulator).v1.customers.retrieve(customer.id)
    assert missing.value.code == "resource_missing"


# --- Replicate ----------------------------------------------------------------------------------

FAST = ("--start-delay", "0.1", "--prediction-duration", "0.2", "--log-interval", "0.1")


def wait_ended(get: Any, timeout_s: float = 20) -> Any:
    return wait_for(
        "the job to end",
        get,
        lambda job: job.status in ("succeeded", "failed", "canceled"),
        timeout_s,
    )


def start_training(
    client: Client,
    receiver: Receiver,
    name: str,
    inputs: dict[str, str] | None = None,
    **options: Any,
) -> Training:
    """A new private model ``visiona/<name>``, and a training into it from the receiver's
    images, its webhooks sent to the receiver."""
    client.models.create(owner="visiona", name=name, visibility="private", hardware="gpu-t4")
    training: Training = client.trainings.create(
        version=TRAINER_REF,
        input={"input_images": f"{receiver.base}/images.zip", **(inputs or {})},
        destination=f"visiona/{name}",
        webhook=f"{receiver.base}/hook",
        **options,
    )
    return training


@pytest.mark.parametrize("how", ["stopped", "killed"])
def test_replicate_keeps_models_versions_trainings_predictions_and_files(
    emulator_processes: list[EmulatorProcess], tmp_path: Path, receiver: Receiver, how: str
) -> None:
    emulator = new_emulator(
        emulator_processes, tmp_path, "replicate", *FAST, "--training-duration", "0.3"
    )
    client = Client(api_token=DEFAULT_API_TOKEN, base_url=emulator.url)
    training = start_training(client, receiver, "lora-ada", {"trigger_word": "TOK"})
    trained = wait_ended(lambda: client.trainings.get(training.id))
    assert trained.status == "succeeded", trained.error
    version = trained.output["version"]
    prediction = client.predictions.create(
        version=version.split(":")[1], input={"prompt": "TOK on a beach", "num_outputs": 2}
    )
    predicted = wait_ended(lambda: client.predictions.get(prediction.id))
    assert predicted.status == "succeeded"
    outputs = {url: httpx.get(url, timeout=10).content for url in predicted.output}
    weights = httpx.get(trained.output["weights"], timeout=10).content
    upload = client.files.create(io.BytesIO(b"some bytes"), filename="notes.txt")

    emulator.stop() if how == "stopped" else emulator.kill()
    emulator.start()

    model = client.models.get("visiona/lora-ada")
    assert model.latest_version is not None and model.latest_version.id == version.split(":")[1]
    assert model.versions.get(model.latest_version.id).id == model.latest_version.id
    assert client.trainings.get(training.id).dict() == trained.dict()
    assert client.predictions.get(prediction.id).dict() == predicted.dict()
    assert {url: httpx.get(url, timeout=10).content for url in predicted.output} == outputs
    assert httpx.get(trained.output["weights"], timeout=10).content == weights
    assert client.files.get(upload.id).size == len(b"some bytes")
    # A deleted version stays deleted: it is what makes a model unavailable.
    model.versions.delete(model.latest_version.id)
    emulator.kill()
    emulator.start()
    with pytest.raises(ReplicateError) as gone:
        client.models.get("visiona/lora-ada").versions.get(model.latest_version.id)
    assert gone.value.status == 404


def test_a_training_running_when_killed_goes_on_and_completes_after_the_restart(
    emulator_processes: list[EmulatorProcess], tmp_path: Path, receiver: Receiver
) -> None:
    emulator = new_emulator(
        emulator_processes, tmp_path, "replicate", *FAST, "--training-duration", "3"
    )
    client = Client(api_token=DEFAULT_API_TOKEN, base_url=emulator.url)
    training = start_training(
        client, receiver, "lora-bo", webhook_events_filter=["start", "completed"]
    )
    wait_for(
        "the training to be processing",
        lambda: client.trainings.get(training.id).status,
        lambda status: status == "processing",
    )
    emulator.kill()
    emulator.start()

    done = wait_ended(lambda: client.trainings.get(training.id))
    assert done.status == "succeeded", done.error
    assert client.models.get("visiona/lora-bo").latest_version is not None
    completed = wait_for(
        "the completed webhook",
        lambda: [b for b in receiver.bodies() if b["status"] == "succeeded"],
        bool,
    )
    assert completed[0]["id"] == training.id


# --- Clerk --------------------------------------------------------------------------------------


def test_clerk_keeps_its_users(emulator_processes: list[EmulatorProcess], tmp_path: Path) -> None:
    emulator = new_emulator(
        emulator_processes, tmp_path, "clerk", CLERK_DEV_KEY_DIR=str(tmp_path / "clerk-key")
    )
    auth = {"Authorization": f"Bearer {CLERK_KEY}"}
    created = httpx.post(
        f"{emulator.url}/v1/users",
        headers=auth,
        json={"email_address": ["ada@example.com"], "first_name": "Ada"},
    ).json()

    emulator.kill()
    emulator.start()

    found = httpx.get(f"{emulator.url}/v1/users/{created['id']}", headers=auth)
    assert found.status_code == 200 and found.json() == created
