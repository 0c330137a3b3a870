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
