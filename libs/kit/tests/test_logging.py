"""Secrets never reach the logs."""

from __future__ import annotations

import io
import json
import logging

import structlog

from visiona.kit.logging import configure_logging, get_logger, redact_secrets, redact_text
from visiona.kit.logging import user_ref as pseudonym
from visiona.kit.settings import KitSettings


def test_values_under_secret_looking_keys_are_redacted() -> None:
    event = redact_secrets(
        None,
        "info",
        {"event": "x", "api_key": "sk-ant-123456", "password": "p", "nested": {"token": "t"}},
    )
    assert event["api_key"] == "[redacted]"
    assert event["password"] == "[redacted]"
    assert event["nested"] == {"token": "[redacted]"}


def test_secrets_deep_in_a_value_are_redacted_and_deeper_containers_are_not_logged() -> None:
    deep: dict[str, object] = {"f": "Authorization: Bearer abcdef123"}
    for key in "edcb":
        deep = {key: deep}
    event = redact_secrets(
        None, "info", {"event": "x", "a": deep, "z": [[[[[["sk_live_abcdef12"]]]]]]}
    )
    line = json.dumps(event)
    assert "abcdef123" not in line and "Bearer [redacted]" in line
    assert "sk_live_abcdef12" not in line and "[too deep]" in line


def test_secret_looking_substrings_are_redacted_from_text() -> None:
    jwt_like = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyX2FsaWNlIn0.c2lnbmF0dXJlX2hlcmU"
    text = redact_text(
        f"failed: Authorization: Bearer abc.def-ghi url=amqp://guest:s3cret@host/ {jwt_like}"
    )
    assert "abc.def-ghi" not in text
    assert "s3cret" not in text
    assert jwt_like not in text


def test_configured_logging_writes_json_with_request_context_and_no_secret() -> None:
    configure_logging(KitSettings(service_name="unit", log_format="json"))
    stream = io.StringIO()
    logging.getLogger().handlers[0].stream = stream  # type: ignore[attr-defined]
    with structlog.contextvars.bound_contextvars(request_id="req-42"):
        get_logger("unit").info("call.done", authorization="Bearer secret-token-value")
    line = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert line["event"] == "call.done"
    assert line["request_id"] == "req-42"
    assert line["service"] == "unit"
    assert "secret-token-value" not in stream.getvalue()


def test_user_ids_become_process_local_pseudonyms_and_emails_are_dropped() -> None:
    configure_logging(KitSettings(service_name="unit", log_format="json"))
    stream = io.StringIO()
    logging.getLogger().handlers[0].stream = stream  # type: ignore[attr-defined]
    with structlog.contextvars.bound_contextvars(user_id="user_2abcSECRETish"):
        get_logger("unit").info("did.thing", email="ada@example.com", owner="user_other")
        get_logger("unit").info("did.again")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    text = stream.getvalue()
    assert "user_2abcSECRETish" not in text
    assert "user_other" not in text
    assert "ada@example.com" not in text
    assert lines[0]["user_ref"] == lines[1]["user_ref"] == pseudonym("user_2abcSECRETish")
    assert lines[0]["owner_ref"] == pseudonym("user_other") != lines[0]["user_ref"]
    assert len(lines[1]["user_ref"]) == 16


def configured_stream() -> io.StringIO:
    configure_logging(KitSettings(service_name="unit", log_format="json"))
    stream = io.StringIO()
    logging.getLogger().handlers[0].stream = stream  # type: ignore[attr-defined]
    return stream


MODEL_ID = "3f1c2b7e-8d9a-4c1b-9e2f-0a1b2c3d4e5f"
CUSTOMER = "cus_QxYz12345678"
TRAINING = "ufawqhfynnddngldkgtslldrkq"
CLERK_USER = "user_2NNEqL2nrIRdJ194ndJqAHwEfxC"


def test_resource_and_provider_ids_become_refs_in_every_text_of_a_line() -> None:
    stream = configured_stream()
    log = get_logger("unit")
    log.info(
        "training.launched",
        model_id=MODEL_ID,
        photo_ids=[MODEL_ID],
        destination=f"visiona/vsn-{MODEL_ID.replace('-', '')}",
        provider_training_id=TRAINING,
        note=f"customer {CUSTOMER} of {CLERK_USER} (ada@example.com)",
    )
    with structlog.contextvars.bound_contextvars(path=f"/v1/models/{MODEL_ID}"):
        try:
            raise RuntimeError(f"GET https://api.example/v1/customers/{CUSTOMER}?expand=x")
        except RuntimeError:
            log.exception("call.failed")
    text = stream.getvalue()
    for needle in (MODEL_ID, MODEL_ID.replace("-", ""), CUSTOMER, TRAINING, CLERK_USER, "ada@"):
        assert needle not in text, needle
    first, second = [json.loads(line) for line in text.splitlines()]
    # One id, one ref, within the process: lines about one resource still correlate.
    assert first["model_id"] == first["photo_ids"][0] and first["model_id"].startswith("ref-")
    assert second["path"] == f"/v1/models/{first['model_id']}"
    assert "expand=x" not in second["exception"]
    assert first["event"] == "training.launched"  # our own names are left alone


def test_correlation_ids_stay_readable() -> None:
    stream = configured_stream()
    request_id, event_id = "0123456789abcdef0123456789abcdef", MODEL_ID
    with structlog.contextvars.bound_contextvars(request_id=request_id):
        get_logger("unit").info("event.handled", event_id=event_id)
    line = json.loads(stream.getvalue().splitlines()[-1])
    assert (line["request_id"], line["event_id"]) == (request_id, event_id)


def test_sdk_request_lines_are_held_back_and_what_they_still_say_is_scrubbed() -> None:
    stream = configured_stream()
    for name in ("stripe", "httpx", "httpcore", "botocore", "replicate", "anthropic", "openai"):
        sdk = logging.getLogger(name)
        sdk.info("Request to Stripe api method=delete url=/v1/customers/%s", CUSTOMER)
        sdk.warning("retrying /v1/trainings/%s for %s", TRAINING, CUSTOMER)
    text = stream.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) == 7 and {line["level"] for line in lines} == {"warning"}
    assert CUSTOMER not in text and TRAINING not in text
