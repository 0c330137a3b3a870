"""The vertical slice through every layer: REST → gateway → gRPC → prompts → Anthropic SDK →
emulator → prompts schema + outbox → relay → RabbitMQ → billing consumer (inbox) → usage."""

from __future__ import annotations

import httpx

from tests.support.stack import RunningStack
from tests.support.waiting import wait_for


def wait_for_usage(stack: RunningStack, user: str, enhancements: int) -> dict[str, int]:
    return wait_for(
        f"{enhancements} enhancements in the usage",
        lambda: httpx.get(f"{stack.url}/v1/usage", headers=stack.auth(user)).json(),
        lambda body: body.get("enhancements") == enhancements,
        timeout_s=15,
    )


def test_enhance_prompt_end_to_end_records_usage_in_billing(stack: RunningStack) -> None:
    user = "slice-user"
    # Exactly the acceptance request (the README's curl line).
    response = httpx.post(
        f"{stack.url}/v1/prompts/enhance",
        headers=stack.auth(user) | {"Content-Type": "application/json"},
        content=b'{"prompt":"me on a beach"}',
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["prompt"] == "me on a beach"
    assert body["enhanced_prompt"].startswith("me on a beach")
    assert len(body["enhanced_prompt"]) > len("me on a beach")
    assert response.headers["x-request-id"]

    stored = stack.admin_sql(
        "SELECT user_id, enhanced_prompt FROM prompts.enhancements WHERE id = %s", body["id"]
    )
    outbox = stack.admin_sql(
        "SELECT routing_key, payload->>'enhancement_id' FROM prompts.outbox "
        "WHERE payload->>'enhancement_id' = %s",
        body["id"],
    )
    assert stored == [("user_slice-user", body["enhanced_prompt"])]
    assert outbox == [("prompts.enhancement.created.v1", body["id"])]

    usage = wait_for_usage(stack, user, 1)
    assert usage == {
        "enhancements": 1,
        "llm_tokens": body["input_tokens"] + body["output_tokens"],
    }
    inbox = stack.admin_sql(
        "SELECT consumer, routing_key FROM billing.inbox i JOIN billing.usage_records u "
        "ON u.source_event_id = i.event_id WHERE u.user_id = %s",
        "user_slice-user",
    )
    assert inbox == [("billing.usage", "prompts.enhancement.created.v1")]


def test_usage_is_per_user(stack: RunningStack) -> None:
    httpx.post(
        f"{stack.url}/v1/prompts/enhance",
        headers=stack.auth("usage-a"),
        json={"prompt": "a portrait in the rain"},
    ).raise_for_status()
    assert wait_for_usage(stack, "usage-a", 1)["enhancements"] == 1
    other = httpx.get(f"{stack.url}/v1/usage", headers=stack.auth("usage-b")).json()
    assert other == {"enhancements": 0, "llm_tokens": 0}


def test_one_trace_from_the_rest_call_to_the_published_event(stack: RunningStack) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    response = httpx.post(
        f"{stack.url}/v1/prompts/enhance",
        headers=stack.auth("tracer") | {"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"},
        json={"prompt": "a forest path"},
    )
    assert response.status_code == 201
    # The gateway continued the caller's trace over gRPC, and the prompts service stored the
    # context with the event, for the relay to put on the AMQP message.
    (headers,) = stack.admin_sql(
        "SELECT headers FROM prompts.outbox WHERE payload->>'enhancement_id' = %s",
        response.json()["id"],
    )[0]
    assert isinstance(headers, dict)
    assert headers["traceparent"].split("-")[1] == trace_id
