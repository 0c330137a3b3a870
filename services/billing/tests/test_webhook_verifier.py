"""Stripe signatures, checked with the SDK's verifier; two secrets during a rotation."""

from __future__ import annotations

import json
import time

import pytest
import stripe

from visiona.billing.providers.stripe import WebhookVerifier, invoice_price
from visiona.kit.errors import InvalidArgument, Unavailable

OLD, NEW = "whsec_old_secret", "whsec_new_secret"
BODY = json.dumps({"id": "evt_1", "object": "event", "type": "invoice.paid", "data": {}})


def sign(body: str, secret: str, at: int | None = None) -> str:
    return str(stripe.WebhookSignature.generate_signature_header(body, secret, timestamp=at))


def code(verifier: WebhookVerifier, body: str, header: str) -> str:
    with pytest.raises(InvalidArgument) as info:
        verifier.verify(body.encode(), header)
    return info.value.code


def test_both_secrets_verify_during_a_rotation_and_others_do_not() -> None:
    verifier = WebhookVerifier([NEW, OLD], tolerance_s=300)
    assert verifier.verify(BODY.encode(), sign(BODY, NEW))["id"] == "evt_1"
    assert verifier.verify(BODY.encode(), sign(BODY, OLD))["id"] == "evt_1"
    assert code(verifier, BODY, sign(BODY, "whsec_other")) == "signature_invalid"
    after = WebhookVerifier([NEW, ""], tolerance_s=300)
    assert code(after, BODY, sign(BODY, OLD)) == "signature_invalid"


def test_missing_stale_tampered_and_malformed_deliveries_are_refused() -> None:
    verifier = WebhookVerifier([NEW], tolerance_s=300)
    assert code(verifier, BODY, "") == "signature_missing"
    assert code(verifier, BODY, "garbage") == "signature_invalid"
    # Signed right but stale is too old; stale and signed wrong is a bad signature.
    assert code(verifier, BODY, sign(BODY, NEW, at=int(time.time()) - 301)) == "timestamp_too_old"
    assert code(after_rotation(), BODY, sign(BODY, OLD, at=int(time.time()) - 3600)) == (
        "timestamp_too_old"
    )
    assert code(verifier, BODY, sign(BODY, OLD, at=int(time.time()) - 301)) == "signature_invalid"
    assert code(verifier, BODY + " ", sign(BODY, NEW)) == "signature_invalid"
    not_event = json.dumps({"id": "x", "object": "charge"})
    assert code(verifier, not_event, sign(not_event, NEW)) == "payload_invalid"
    assert code(verifier, "[1]", sign("[1]", NEW)) == "payload_invalid"


def after_rotation() -> WebhookVerifier:
    return WebhookVerifier([NEW, OLD], tolerance_s=300)


def test_without_a_configured_secret_nothing_is_accepted() -> None:
    with pytest.raises(Unavailable):
        WebhookVerifier(["", ""], tolerance_s=300).verify(BODY.encode(), sign(BODY, NEW))


def test_the_price_of_an_invoice_line_in_either_api_shape() -> None:
    new = {"lines": {"data": [{"pricing": {"price_details": {"price": "price_a"}}}]}}
    old = {"lines": {"data": [{"price": {"id": "price_b", "object": "price"}}]}}
    assert (invoice_price(new), invoice_price(old), invoice_price({})) == (
        "price_a",
        "price_b",
        None,
    )


def test_a_body_that_is_not_utf8_is_a_clean_refusal() -> None:
    verifier = WebhookVerifier([NEW], tolerance_s=300)
    with pytest.raises(InvalidArgument) as info:
        verifier.verify(b"\xff\xfe{}", sign("x", NEW))
    assert info.value.code == "payload_invalid"
