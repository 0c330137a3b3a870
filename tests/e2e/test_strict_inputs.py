"""Request bodies are read strictly, in every route group: a field the API does not know is a
422 naming it (never ignored, its intended value silently replaced by a default), and a value
of the wrong JSON type is a 422 too (never coerced: ``"2"`` is not a number). Nothing runs.
The rule itself, for every body model: services/gateway/tests/test_strict_inputs.py."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.e2e.test_billing import balance
from tests.e2e.test_cross_site import traces
from tests.e2e.test_generation import ready_owner
from tests.support.stack import RunningStack

PROBLEM = "application/problem+json"


def new_user(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def send(
    stack: RunningStack, user: str, method: str, path: str, body: dict[str, Any]
) -> httpx.Response:
    return httpx.request(
        method, f"{stack.url}{path}", headers=stack.auth(user), json=body, timeout=60
    )


def assert_names(response: httpx.Response, loc: list[str | int], kind: str) -> None:
    """A 422 validation_error whose errors name ``loc`` with the error type ``kind``."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["code"] == "validation_error", body
    assert {"loc": loc, "type": kind} in [
        {"loc": e["loc"], "type": e["type"]} for e in body["errors"]
    ], body["errors"]


def test_a_misspelt_or_mistyped_generation_field_is_422_and_nothing_is_charged(
    stack: RunningStack,
) -> None:
    name, model = ready_owner(stack, "strict")
    user = f"user_{name}"
    before, credits = traces(stack, user), balance(stack, name)
    create = {"model_id": model["id"], "prompt": "me on a beach"}
    misspelt = send(stack, name, "POST", "/v1/generations", {**create, "num_output": 4})
    assert_names(misspelt, ["body", "num_output"], "extra_forbidden")
    for field, value, kind in (
        ("num_outputs", "2", "int_type"),
        ("num_outputs", 2.0, "int_type"),
        ("enhance", "true", "bool_type"),
        ("seed", "42", "int_type"),
        ("lora_scale", "0.8", "float_type"),
        ("prompt", 42, "string_type"),
    ):
        answer = send(stack, name, "POST", "/v1/generations", {**create, field: value})
        assert_names(answer, ["body", field], kind)
    assert traces(stack, user) == before
    assert balance(stack, name) == credits


def test_images_patch_takes_a_json_boolean_only(stack: RunningStack) -> None:
    name, image = new_user("strict-image"), str(uuid.uuid4())
    path = f"/v1/images/{image}"
    assert_names(
        send(stack, name, "PATCH", path, {"favourite": "true"}), ["body", "favourite"], "bool_type"
    )
    assert_names(
        send(stack, name, "PATCH", path, {"favourite": 1}), ["body", "favourite"], "bool_type"
    )
    assert_names(
        send(stack, name, "PATCH", path, {"favourite": True, "favorite": True}),
        ["body", "favorite"],
        "extra_forbidden",
    )


def test_photo_uploads_refuse_unknown_fields_at_every_depth(stack: RunningStack) -> None:
    name = new_user("strict-photos")
    photo = {"content_type": "image/jpeg"}
    top = send(stack, name, "POST", "/v1/photos/uploads", {"photos": [photo], "facepolicy": "flag"})
    assert_names(top, ["body", "facepolicy"], "extra_forbidden")
    nested = send(stack, name, "POST", "/v1/photos/uploads", {"photos": [{**photo, "size": 5}]})
    assert_names(nested, ["body", "photos", 0, "size"], "extra_forbidden")
    listed = httpx.get(f"{stack.url}/v1/photos", headers=stack.auth(name))
    assert listed.json()["photos"] == []


def test_models_refuse_unknown_fields_on_create_and_rename(stack: RunningStack) -> None:
    name = new_user("strict-models")
    create = {"name": "Me", "photo_ids": [str(uuid.uuid4()) for _ in range(10)]}
    assert_names(
        send(stack, name, "POST", "/v1/models", {**create, "trigger": "abc"}),
        ["body", "trigger"],
        "extra_forbidden",
    )
    assert_names(
        send(stack, name, "POST", "/v1/models", {**create, "photo_ids": [1] * 10}),
        ["body", "photo_ids", 0],
        "string_type",
    )
    rename = send(stack, name, "PATCH", f"/v1/models/{uuid.uuid4()}", {"name": "x", "nmae": "y"})
    assert_names(rename, ["body", "nmae"], "extra_forbidden")
    assert traces(stack, f"user_{name}")["training.models"] == 0


def test_checkout_refuses_unknown_fields_and_opens_no_session(stack: RunningStack) -> None:
    name = new_user("strict-checkout")
    answer = send(
        stack,
        name,
        "POST",
        "/v1/billing/checkout",
        {"kind": "pack", "item_id": "starter", "quantity": 3},
    )
    assert_names(answer, ["body", "quantity"], "extra_forbidden")
    typed = send(stack, name, "POST", "/v1/billing/checkout", {"kind": "pack", "item_id": 7})
    assert_names(typed, ["body", "item_id"], "string_type")
    assert traces(stack, f"user_{name}")["billing.checkout_sessions"] == 0


def test_enhance_refuses_unknown_fields_and_stores_nothing(stack: RunningStack) -> None:
    name = new_user("strict-enhance")
    answer = send(
        stack, name, "POST", "/v1/prompts/enhance", {"prompt": "me on a beach", "style": "noir"}
    )
    assert_names(answer, ["body", "style"], "extra_forbidden")
    assert traces(stack, f"user_{name}")["prompts.enhancements"] == 0
