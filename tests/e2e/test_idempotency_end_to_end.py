"""Idempotency end to end (issue 13, ADR 0009): one Idempotency-Key, one resource, one charge,
whatever failed between the service's commit and the gateway's record of the answer.

A lost answer is simulated the way a crash leaves it: the gateway's key row deleted (the
attempt failed after the service committed and gave the key back: UNAVAILABLE, a 500 from the
read after the commit) or left in progress under a live lease (the gateway died before
recording). Either way the retry must get the first resource, not a second one, not a plan
limit the first one now counts against, and not a wait for the lease.
"""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from tests.e2e.saga_helpers import wait_export
from tests.e2e.test_generation import anthropic_url, ready_owner
from tests.e2e.training_helpers import accepted_photo_ids, emulator
from tests.support.stack import RunningStack
from tests.support.waiting import wait_for
from visiona.emulators.ports import free_port
from visiona.emulators.stack import bin_path
from visiona.generation.v1 import generation_pb2, generation_pb2_grpc
from visiona.kit.grpcserver import ERROR_CODE_KEY, INTERNAL_TOKEN_KEY
from visiona.kit.idempotency import KEY_METADATA, was_replayed
from visiona.kit.internal_token import Minter

LOST = ("absent", "in_progress")


def new_user(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def post(
    stack: RunningStack, user: str, path: str, key: str, body: dict[str, Any] | None = None
) -> httpx.Response:
    return httpx.post(
        f"{stack.url}{path}",
        headers={**stack.auth(user), "Idempotency-Key": key},
        json=body,
        timeout=60,
    )


def lose_the_answer(stack: RunningStack, user: str, key: str, how: str) -> None:
    """Leave the gateway's record of ``key`` as a crash would: gone (the attempt gave the key
    back after a failure) or in progress under a lease still running (its gateway died)."""
    if how == "absent":
        lost = stack.admin_sql(
            "DELETE FROM gateway.idempotency_keys WHERE user_id = %s AND key = %s RETURNING key",
            f"user_{user}",
            key,
        )
    else:
        lost = stack.admin_sql(
            "UPDATE gateway.idempotency_keys SET state = 'in_progress', status = NULL, "
            "headers = NULL, body = NULL, attempt = gen_random_uuid(), "
            "locked_until = now() + interval '90 seconds' "
            "WHERE user_id = %s AND key = %s AND state = 'done' RETURNING key",
            f"user_{user}",
            key,
        )
    assert lost == [(key,)]


def count(stack: RunningStack, table: str, user: str) -> int:
    rows = stack.admin_sql(f"SELECT count(*) FROM {table} WHERE user_id = %s", f"user_{user}")
    return int(rows[0][0])  # type: ignore[call-overload]


def assert_the_first_again(
    stack: RunningStack,
    user: str,
    path: str,
    key: str,
    body: dict[str, Any],
    first: httpx.Response,
    table: str,
) -> None:
    """The request sent again with ``key`` answers what ``first`` answered, replayed, and
    ``table`` holds one row of the user: the retry made nothing new."""
    retried = post(stack, user, path, key, body)
    assert retried.status_code == 202, retried.text
    assert retried.json()["id"] == first.json()["id"]
    assert count(stack, table, user) == 1
    assert_replayed(stack, user, path, key, body, retried.content)


def assert_replayed(
    stack: RunningStack, user: str, path: str, key: str, body: Any, like: bytes
) -> None:
    """Once the retry's answer is recorded, the gateway replays it byte for byte."""
    again = post(stack, user, path, key, body)
    assert again.headers.get("idempotent-replayed") == "true", again.text
    assert again.content == like


# --- generations ----------------------------------------------------------------------------


@pytest.fixture
def slow_predictions(stack: RunningStack) -> None:
    """Predictions that outlast the test's requests: the first generation keeps running, so
    the free plan's one-at-a-time limit counts it (restored after the test)."""
    emulator(stack, "config", {"prediction_duration_s": 30})


def cancel_generation(stack: RunningStack, user: str, gen_id: str) -> None:
    httpx.post(f"{stack.url}/v1/generations/{gen_id}/cancel", headers=stack.auth(user), timeout=30)


@contextlib.contextmanager
def first_generation(
    stack: RunningStack, user: str, key: str, body: dict[str, Any]
) -> Iterator[httpx.Response]:
    """The answer (202) to the generation made with ``key``; canceled when the block ends."""
    first = post(stack, user, "/v1/generations", key, body)
    assert first.status_code == 202, first.text
    try:
        yield first
    finally:
        cancel_generation(stack, user, first.json()["id"])


@pytest.mark.parametrize("how", LOST)
def test_a_generation_retried_after_its_answer_was_lost_is_the_first_one(
    stack: RunningStack, slow_predictions: None, how: str
) -> None:
    user, model = ready_owner(stack, "retry")
    key, body = f"gen-{uuid.uuid4()}", {"model_id": model["id"], "prompt": "me at sea"}
    with first_generation(stack, user, key, body) as first:
        lose_the_answer(stack, user, key, how)
        # Neither 409 generation_limit_reached (the free plan's limit counts the first one)
        # nor 409 idempotency_key_in_progress for the lease, nor a second generation.
        assert_the_first_again(
            stack, user, "/v1/generations", key, body, first, "generation.generations"
        )


def test_a_lost_generation_key_sent_with_another_prompt_is_422(
    stack: RunningStack, slow_predictions: None
) -> None:
    user, model = ready_owner(stack, "reuse")
    key = f"gen-{uuid.uuid4()}"
    with first_generation(stack, user, key, {"model_id": model["id"], "prompt": "a"}):
        lose_the_answer(stack, user, key, "absent")
        other = post(stack, user, "/v1/generations", key, {"model_id": model["id"], "prompt": "b"})
        assert other.status_code == 422, other.text
        assert other.json()["code"] == "idempotency_key_reused"
        assert count(stack, "generation.generations", user) == 1


def test_twin_generations_in_flight_at_once_make_one(
    stack: RunningStack, slow_predictions: None
) -> None:
    user, model = ready_owner(stack, "twins")
    key, body = f"gen-{uuid.uuid4()}", {"model_id": model["id"], "prompt": "me in the rain"}
    # The LLM's answer keeps every twin in flight while the others arrive.
    httpx.post(f"{anthropic_url(stack)}/_emulator/config", json={"latency_ms": 1500})
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda _: post(stack, user, "/v1/generations", key, body), "abc"))
    assert [a.status_code for a in answers] == [202] * 3, [a.text for a in answers]
    ids = {a.json()["id"] for a in answers}
    assert len(ids) == 1
    try:
        assert count(stack, "generation.generations", user) == 1
    finally:
        cancel_generation(stack, user, ids.pop())


def test_the_generation_service_answers_a_repeated_key_with_the_first_generation(
    stack: RunningStack, slow_predictions: None
) -> None:
    """The service's own contract: the same key twice (the first answer lost on the way: an
    UNAVAILABLE, a failed read after the commit) is the first generation, marked replayed."""
    user, model = ready_owner(stack, "grpc")
    minter = Minter(stack.cfg.internal_token_secret, issuer="gateway")
    request = generation_pb2.CreateGenerationRequest(
        model_id=model["id"], prompt="me on a hill", num_outputs=1
    )
    with grpc.insecure_channel(f"127.0.0.1:{stack.cfg.ports['generation']}") as channel:
        stub = generation_pb2_grpc.GenerationServiceStub(channel)  # type: ignore[no-untyped-call]

        def create(
            message: generation_pb2.CreateGenerationRequest,
        ) -> tuple[generation_pb2.CreateGenerationResponse, Any]:
            metadata = ((INTERNAL_TOKEN_KEY, minter.token(f"user_{user}")), (KEY_METADATA, "k1"))
            response, call = stub.CreateGeneration.with_call(message, metadata=metadata, timeout=60)
            return response, call.trailing_metadata()

        first, first_trailer = create(request)
        again, again_trailer = create(request)
        assert again.generation.id == first.generation.id
        assert (was_replayed(first_trailer), was_replayed(again_trailer)) == (False, True)
        with pytest.raises(grpc.RpcError) as refused:
            create(generation_pb2.CreateGenerationRequest(model_id=model["id"], prompt="else"))
    error: Any = refused.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert dict(error.trailing_metadata())[ERROR_CODE_KEY] == "idempotency_key_reused"
    try:
        assert count(stack, "generation.generations", user) == 1
    finally:
        cancel_generation(stack, user, first.generation.id)


@contextlib.contextmanager
def doomed_gateway(stack: RunningStack) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A second gateway (as tests.support.stack.extra_gateway) whose process the test may
    kill."""
    port, cfg = free_port(), stack.cfg
    environ = cfg.base_env() | cfg.gateway_env() | {"GATEWAY_PORT": str(port)}
    log_path = Path(cfg.state_dir) / "logs" / f"gateway-{port}.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [bin_path("visiona-gateway"), "serve"], env=environ, stdout=log, stderr=log
        )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert proc.poll() is None, log_path.read_text()[-3000:]
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
        return False

    try:
        wait_for("the second gateway to start", healthy, bool, timeout_s=60)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_a_generation_retried_after_its_gateway_died_mid_request_is_made_once(
    stack: RunningStack, slow_predictions: None
) -> None:
    """The gateway holding the key is killed while the generation is being made: the retry
    on another gateway is not held off for the key's lease, and there is one generation."""
    user, model = ready_owner(stack, "orphan")
    key, body = f"gen-{uuid.uuid4()}", {"model_id": model["id"], "prompt": "me on a bridge"}
    # The LLM's answer keeps the first attempt in the generation service while it dies.
    httpx.post(f"{anthropic_url(stack)}/_emulator/config", json={"latency_ms": 3000})

    def first_attempt(url: str) -> httpx.Response | None:
        with contextlib.suppress(httpx.HTTPError):
            return httpx.post(
                f"{url}/v1/generations",
                headers={**stack.auth(user), "Idempotency-Key": key},
                json=body,
                timeout=60,
            )
        return None

    with doomed_gateway(stack) as (url, proc), ThreadPoolExecutor(1) as pool:
        attempt = pool.submit(first_attempt, url)
        wait_for(
            "the first attempt to hold the key",
            lambda: stack.admin_sql(
                "SELECT state FROM gateway.idempotency_keys WHERE user_id = %s AND key = %s",
                f"user_{user}",
                key,
            ),
            lambda rows: rows == [("in_progress",)],
        )
        proc.kill()
        assert attempt.result() is None  # it never answered
    retried = post(stack, user, "/v1/generations", key, body)
    assert retried.status_code == 202, retried.text
    try:
        assert count(stack, "generation.generations", user) == 1
        assert_replayed(stack, user, "/v1/generations", key, body, retried.content)
    finally:
        cancel_generation(stack, user, retried.json()["id"])


# --- models ---------------------------------------------------------------------------------


@pytest.mark.parametrize("how", LOST)
def test_a_model_retried_after_its_answer_was_lost_is_the_first_one(
    stack: RunningStack, how: str
) -> None:
    user = new_user("trainer")
    body = {"name": "Me", "photo_ids": accepted_photo_ids(stack, user, 10), "preset": "fast"}
    key = f"model-{uuid.uuid4()}"
    first = post(stack, user, "/v1/models", key, body)
    assert first.status_code == 202, first.text
    lose_the_answer(stack, user, key, how)
    assert_the_first_again(stack, user, "/v1/models", key, body, first, "training.models")


# --- checkout -------------------------------------------------------------------------------

STARTER_PACK = {"kind": "pack", "item_id": "starter"}


def stripe_sessions(stack: RunningStack, user: str) -> list[str]:
    """Ids of the checkout sessions the Stripe emulator holds for the user's customer."""
    rows = stack.admin_sql(
        "SELECT stripe_customer_id FROM billing.accounts WHERE user_id = %s", f"user_{user}"
    )
    answer = httpx.get(
        f"{stack.emulator_url('stripe')}/v1/checkout/sessions",
        params={"customer": str(rows[0][0]), "limit": 100},
        headers={"Authorization": f"Bearer {stack.cfg.stripe_api_key}"},
    )
    answer.raise_for_status()
    return [s["id"] for s in answer.json()["data"]]


def audited_checkouts(stack: RunningStack, user: str) -> list[str]:
    answer = httpx.get(f"{stack.url}/v1/me/audit", headers=stack.auth(user))
    assert answer.status_code == 200, answer.text
    return [
        e["details"]["session_id"]
        for e in answer.json()["entries"]
        if e["action"] == "billing.checkout_created"
    ]


@pytest.mark.parametrize("how", LOST)
def test_a_checkout_retried_after_its_answer_was_lost_is_the_same_session(
    stack: RunningStack, how: str
) -> None:
    user, key = new_user("payer"), f"checkout-{uuid.uuid4()}"
    first = post(stack, user, "/v1/billing/checkout", key, STARTER_PACK)
    assert first.status_code == 201, first.text
    lose_the_answer(stack, user, key, how)
    retried = post(stack, user, "/v1/billing/checkout", key, STARTER_PACK)
    assert retried.status_code == 201, retried.text
    assert retried.json() == first.json()  # the same session, the same URL
    assert stripe_sessions(stack, user) == [first.json()["session_id"]]
    assert audited_checkouts(stack, user) == [first.json()["session_id"]]
    assert_replayed(stack, user, "/v1/billing/checkout", key, STARTER_PACK, retried.content)


def test_a_checkout_stripe_opened_but_billing_never_recorded_is_the_same_session(
    stack: RunningStack,
) -> None:
    """Billing's own record lost too (a crash between Stripe's answer and billing's commit):
    Stripe's key follows from the caller's, so Stripe answers the session it made."""
    user, key = new_user("payer"), f"checkout-{uuid.uuid4()}"
    first = post(stack, user, "/v1/billing/checkout", key, STARTER_PACK)
    assert first.status_code == 201, first.text
    stack.admin_sql("DELETE FROM billing.checkout_sessions WHERE user_id = %s", f"user_{user}")
    lose_the_answer(stack, user, key, "absent")
    retried = post(stack, user, "/v1/billing/checkout", key, STARTER_PACK)
    assert retried.status_code == 201, retried.text
    assert retried.json()["session_id"] == first.json()["session_id"]
    assert retried.json()["url"] == first.json()["url"]
    assert stripe_sessions(stack, user) == [first.json()["session_id"]]


def test_a_lost_checkout_key_sent_for_another_pack_is_422(stack: RunningStack) -> None:
    user, key = new_user("payer"), f"checkout-{uuid.uuid4()}"
    assert post(stack, user, "/v1/billing/checkout", key, STARTER_PACK).status_code == 201
    lose_the_answer(stack, user, key, "absent")
    other = post(stack, user, "/v1/billing/checkout", key, {"kind": "pack", "item_id": "pro"})
    assert other.status_code == 422, other.text
    assert other.json()["code"] == "idempotency_key_reused"
    assert len(stripe_sessions(stack, user)) == 1


def test_twin_checkouts_in_flight_at_once_are_one_session(stack: RunningStack) -> None:
    user, key = new_user("twins"), f"checkout-{uuid.uuid4()}"
    stripe = f"{stack.emulator_url('stripe')}/_emulator/config"
    httpx.post(stripe, json={"latency_ms": 1500}).raise_for_status()
    with ThreadPoolExecutor(4) as pool:
        answers = list(
            pool.map(lambda _: post(stack, user, "/v1/billing/checkout", key, STARTER_PACK), "abcd")
        )
    assert [a.status_code for a in answers] == [201] * 4, [a.text for a in answers]
    assert len({a.content for a in answers}) == 1
    session = answers[0].json()["session_id"]
    assert stripe_sessions(stack, user) == [session]
    assert audited_checkouts(stack, user) == [session]


# --- exports --------------------------------------------------------------------------------


@pytest.mark.parametrize("how", LOST)
def test_an_export_retried_after_its_answer_was_lost_is_the_first_one(
    stack: RunningStack, how: str
) -> None:
    user, key = new_user("exporter"), f"export-{uuid.uuid4()}"
    first = post(stack, user, "/v1/me/export", key)
    assert first.status_code == 202, first.text
    # Finished, so a retry that ran again would start a second export.
    finished = wait_export(stack, user, first.json()["id"], timeout_s=60)
    lose_the_answer(stack, user, key, how)
    retried = post(stack, user, "/v1/me/export", key)
    assert retried.status_code == 202, retried.text
    assert retried.json()["id"] == first.json()["id"]
    assert retried.json()["status"] == finished["status"]
    assert count(stack, "gateway.exports", user) == 1
    assert_replayed(stack, user, "/v1/me/export", key, None, retried.content)
