"""Back services trust only a signed internal token: a caller that can reach a gRPC port but
does not hold the shared secret cannot act as anyone, whatever metadata it sends."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.stack import RunningStack
from visiona.billing.v1 import billing_pb2, billing_pb2_grpc
from visiona.kit.grpcserver import ERROR_CODE_KEY, INTERNAL_TOKEN_KEY
from visiona.kit.internal_token import Minter
from visiona.training.v1 import training_pb2, training_pb2_grpc

# What the gateway used to send, and what an intruder would still try.
LEGACY_USER_KEY = "x-visiona-user-id"

Metadata = tuple[tuple[str, str], ...]


@pytest.fixture(scope="module")
def channels(stack: RunningStack) -> Iterator[dict[str, grpc.Channel]]:
    opened = {
        name: grpc.insecure_channel(f"127.0.0.1:{stack.cfg.ports[name]}")
        for name in ("training", "billing")
    }
    try:
        yield opened
    finally:
        for channel in opened.values():
            channel.close()


@pytest.fixture(scope="module")
def minter(stack: RunningStack) -> Minter:
    """Mints with the stack's secret, as the gateway does."""
    return Minter(stack.cfg.internal_token_secret, issuer="gateway")


def user() -> str:
    return f"trust{uuid.uuid4().hex[:10]}"


def list_models(channels: dict[str, grpc.Channel], metadata: Metadata) -> Any:
    stub = training_pb2_grpc.TrainingServiceStub(channels["training"])
    return stub.ListModels(training_pb2.ListModelsRequest(), metadata=metadata, timeout=10)


def get_balance(channels: dict[str, grpc.Channel], metadata: Metadata) -> Any:
    stub = billing_pb2_grpc.BillingServiceStub(channels["billing"])
    return stub.GetBalance(billing_pb2.GetBalanceRequest(), metadata=metadata, timeout=10)


CALLS: dict[str, Callable[[dict[str, grpc.Channel], Metadata], Any]] = {
    "training.ListModels": list_models,
    "billing.GetBalance": get_balance,
}


def assert_rejected(call: Callable[[], Any]) -> None:
    with pytest.raises(grpc.RpcError) as info:
        call()
    error: Any = info.value
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert dict(error.trailing_metadata() or ()).get(ERROR_CODE_KEY) == "invalid_internal_token"


@pytest.mark.parametrize("rpc", CALLS)
def test_a_forged_user_header_without_a_token_is_rejected(
    channels: dict[str, grpc.Channel], rpc: str
) -> None:
    assert_rejected(lambda: CALLS[rpc](channels, ((LEGACY_USER_KEY, f"user_{user()}"),)))


@pytest.mark.parametrize("rpc", CALLS)
def test_a_token_signed_with_another_secret_is_rejected(
    channels: dict[str, grpc.Channel], rpc: str
) -> None:
    forger = Minter(secrets.token_urlsafe(32), issuer="gateway")
    metadata = ((INTERNAL_TOKEN_KEY, forger.token(f"user_{user()}")),)
    assert_rejected(lambda: CALLS[rpc](channels, metadata))


@pytest.mark.parametrize("rpc", CALLS)
def test_an_expired_token_is_rejected(
    stack: RunningStack, channels: dict[str, grpc.Channel], rpc: str
) -> None:
    # The right secret, minted ten minutes ago: long past its one-minute life.
    stale = Minter(
        stack.cfg.internal_token_secret, issuer="gateway", clock=lambda: time.time() - 600
    )
    metadata = ((INTERNAL_TOKEN_KEY, stale.token(f"user_{user()}")),)
    assert_rejected(lambda: CALLS[rpc](channels, metadata))


def test_the_principal_comes_from_the_token_not_from_other_metadata(
    stack: RunningStack, channels: dict[str, grpc.Channel], minter: Minter
) -> None:
    alice, bob = user(), user()
    billing = billing_pb2_grpc.BillingServiceStub(channels["billing"])
    granted = billing.AdjustCredits(
        billing_pb2.AdjustCreditsRequest(
            user_id=f"user_{alice}",
            delta=40,
            reason="trust test",
            actor="tests",
            idempotency_key=f"trust-{alice}",
        ),
        metadata=((INTERNAL_TOKEN_KEY, minter.token(None)),),
        timeout=10,
    )
    assert granted.applied and granted.balance == 40

    as_alice_claiming_bob = (
        (INTERNAL_TOKEN_KEY, minter.token(f"user_{alice}")),
        (LEGACY_USER_KEY, f"user_{bob}"),
    )
    assert get_balance(channels, as_alice_claiming_bob).balance == 40
    as_bob_claiming_alice = (
        (INTERNAL_TOKEN_KEY, minter.token(f"user_{bob}")),
        (LEGACY_USER_KEY, f"user_{alice}"),
    )
    assert get_balance(channels, as_bob_claiming_alice).balance == 0
    # The same user the gateway derives from a session token.
    response = httpx.get(f"{stack.url}/v1/billing/balance", headers=stack.auth(alice))
    assert response.status_code == 200, response.text
    assert response.json()["balance"] == 40


@pytest.mark.parametrize("rpc", CALLS)
def test_a_system_token_acts_for_no_user(
    channels: dict[str, grpc.Channel], minter: Minter, rpc: str
) -> None:
    with pytest.raises(grpc.RpcError) as info:
        CALLS[rpc](channels, ((INTERNAL_TOKEN_KEY, minter.token(None)),))
    error: Any = info.value
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert dict(error.trailing_metadata() or ()).get(ERROR_CODE_KEY) == "unauthenticated"


def test_operator_and_webhook_calls_refuse_a_token_made_for_a_user(
    channels: dict[str, grpc.Channel], minter: Minter
) -> None:
    """Credit adjustments and webhook ingestion are the system's acts: a valid token for a
    user (what a compromised request path could mint) cannot make them."""
    stub = billing_pb2_grpc.BillingServiceStub(channels["billing"])
    mine = f"user_{user()}"
    for call in (
        lambda md: stub.AdjustCredits(
            billing_pb2.AdjustCreditsRequest(
                user_id=mine, delta=1000, reason="free", actor="me", idempotency_key="k1"
            ),
            metadata=md,
            timeout=10,
        ),
        lambda md: stub.IngestStripeEvent(
            billing_pb2.IngestStripeEventRequest(payload=b"{}", signature="t=1,v1=00"),
            metadata=md,
            timeout=10,
        ),
        lambda md: training_pb2_grpc.TrainingServiceStub(
            channels["training"]
        ).IngestReplicateWebhook(
            training_pb2.IngestReplicateWebhookRequest(
                payload=b"{}", webhook_id="msg_1", webhook_timestamp="1", webhook_signature="v1,x"
            ),
            metadata=md,
            timeout=10,
        ),
    ):
        with pytest.raises(grpc.RpcError) as info:
            call(((INTERNAL_TOKEN_KEY, minter.token(mine)),))
        error: Any = info.value
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        assert dict(error.trailing_metadata() or ()).get(ERROR_CODE_KEY) == "system_only"
    balance = get_balance(channels, ((INTERNAL_TOKEN_KEY, minter.token(mine)),))
    assert balance.balance == 0


@pytest.mark.parametrize("service", ["training", "billing"])
def test_health_needs_no_token(channels: dict[str, grpc.Channel], service: str) -> None:
    health = health_pb2_grpc.HealthStub(channels[service])
    reply = health.Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_the_gateway_path_carries_a_valid_token(stack: RunningStack) -> None:
    headers = stack.auth(user())
    models = httpx.get(f"{stack.url}/v1/models", headers=headers)
    assert models.status_code == 200, models.text
    assert models.json()["models"] == []
    balance = httpx.get(f"{stack.url}/v1/billing/balance", headers=headers)
    assert balance.status_code == 200, balance.text
