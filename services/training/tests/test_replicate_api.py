"""Webhook verification (Standard Webhooks via the SDK) and the provider's training objects."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import pytest

from visiona.kit.replicate import InvalidWebhook, WebhookSecrets, verify_webhook
from visiona.training.domain.model import ProviderTraining

SECRET = "whsec_" + base64.b64encode(b"s" * 32).decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"o" * 32).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"x" * 32).decode()
BODY = json.dumps({"id": "tr_1", "status": "processing", "logs": "step 10/100\n"}).encode()


def sign(body: bytes, webhook_id: str, timestamp: int, secret: str = SECRET) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def verify(body: bytes = BODY, **overrides: object) -> dict[str, object]:
    now = int(time.time())
    args: dict[str, object] = {
        "webhook_id": "msg_1",
        "timestamp": str(now),
        "signature": sign(BODY, "msg_1", now),
        "body": body,
        "tolerance_s": 300,
    }
    args |= overrides
    secrets = args.pop("secrets", [SECRET])
    return verify_webhook(secrets, **args)  # type: ignore[arg-type]


def test_a_signed_delivery_is_decoded() -> None:
    assert verify()["id"] == "tr_1"


def test_the_previous_secret_still_verifies_during_a_rotation() -> None:
    now = int(time.time())
    data = verify(signature=sign(BODY, "msg_1", now, OLD_SECRET), secrets=[SECRET, OLD_SECRET])
    assert data["status"] == "processing"


def test_during_a_rotation_a_secret_neither_current_nor_previous_is_refused() -> None:
    now = int(time.time())
    with pytest.raises(InvalidWebhook) as caught:
        verify(signature=sign(BODY, "msg_1", now, OTHER_SECRET), secrets=[SECRET, OLD_SECRET])
    assert caught.value.code == "signature_invalid"


def test_once_the_rotation_ends_the_previous_secret_is_refused() -> None:
    now = int(time.time())
    with pytest.raises(InvalidWebhook) as caught:
        verify(signature=sign(BODY, "msg_1", now, OLD_SECRET), secrets=[SECRET])
    assert caught.value.code == "signature_invalid"


class _NoApi:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the Replicate API was asked ({name})")


async def test_configured_secrets_are_current_then_previous_and_need_no_api_call() -> None:
    sdk: Any = _NoApi()
    assert await WebhookSecrets(sdk, SECRET, OLD_SECRET).get() == [SECRET, OLD_SECRET]
    assert await WebhookSecrets(sdk, SECRET).get() == [SECRET]


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"signature": "v1," + base64.b64encode(b"x" * 32).decode()}, "signature_invalid"),
        ({"body": BODY + b" "}, "signature_invalid"),
        ({"webhook_id": "msg_2"}, "signature_invalid"),
        ({"signature": ""}, "signature_missing"),
        ({"timestamp": "not-a-number"}, "signature_invalid"),
    ],
)
def test_tampered_or_missing_signatures_are_refused(
    overrides: dict[str, object], code: str
) -> None:
    with pytest.raises(InvalidWebhook) as caught:
        verify(**overrides)
    assert caught.value.code == code


@pytest.mark.parametrize(
    ("skew", "code", "says"),
    [(-3600, "timestamp_too_old", "too old"), (301, "timestamp_too_new", "future")],
)
def test_a_well_signed_timestamp_outside_five_minutes_is_refused_as_stale(
    skew: int, code: str, says: str
) -> None:
    then = int(time.time()) + skew
    with pytest.raises(InvalidWebhook) as caught:
        verify(timestamp=str(then), signature=sign(BODY, "msg_1", then))
    assert caught.value.code == code and says in str(caught.value)


def test_a_stale_and_forged_delivery_is_a_bad_signature() -> None:
    then = int(time.time()) - 3600
    with pytest.raises(InvalidWebhook) as caught:
        verify(timestamp=str(then), signature=sign(BODY, "msg_1", then, OTHER_SECRET))
    assert caught.value.code == "signature_invalid"


def test_a_signed_body_that_is_no_job_is_refused() -> None:
    now = int(time.time())
    for body in (b"[1, 2]", b"{not json", json.dumps({"id": "x"}).encode()):
        with pytest.raises(InvalidWebhook) as caught:
            verify(body=body, signature=sign(body, "msg_1", now))
        assert caught.value.code == "payload_invalid"


def test_training_output_and_progress() -> None:
    done = ProviderTraining.from_payload(
        {
            "id": "tr_1",
            "status": "succeeded",
            "output": {"version": "visiona/vsn-1:abc", "weights": "https://x/w.tar"},
            "logs": "flux_train:  99%|#########9| 990/1000\n100%|##########| 1000/1000\n",
        }
    )
    assert (done.version, done.weights_url, done.progress) == (
        "visiona/vsn-1:abc",
        "https://x/w.tar",
        1.0,
    )
    assert ProviderTraining.from_payload(
        {"id": "t", "status": "processing", "logs": "step 250/1000\n"}
    ).progress == pytest.approx(0.25)
    assert ProviderTraining.from_payload({"id": "t", "status": "starting"}).progress is None
    failed = ProviderTraining.from_payload({"id": "t", "status": "failed", "error": "OOM"})
    assert (failed.error, failed.version) == ("OOM", None)
