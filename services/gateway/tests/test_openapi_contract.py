"""The OpenAPI document promises exactly what the gateway enforces: stable operation ids,
links from every create to what reads, changes or deletes the created resource, and the
formats of cursors, trigger words and Idempotency-Key as the server checks them. No server:
the document of the app as built. Against the running stack: tests/e2e/test_fuzz.py."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI

from visiona.gateway.app import create_app
from visiona.gateway.edge.idempotency import _VALID_KEY
from visiona.gateway.edge.methods import allowed_methods
from visiona.kit.paging import decode_cursor, encode_cursor

# Chosen by hand and kept: clients generated from the document name their methods after them.
OPERATION_IDS = {
    ("get", "/v1/me"): "getMe",
    ("delete", "/v1/me"): "deleteAccount",
    ("get", "/v1/me/deletion"): "getAccountDeletion",
    ("post", "/v1/me/export"): "createExport",
    ("get", "/v1/me/exports"): "listExports",
    ("get", "/v1/me/exports/{export_id}"): "getExport",
    ("get", "/v1/me/audit"): "listAuditEntries",
    ("post", "/v1/prompts/enhance"): "enhancePrompt",
    ("get", "/v1/prompts/packs"): "listStylePacks",
    ("get", "/v1/usage"): "getUsage",
    ("get", "/v1/billing/balance"): "getBalance",
    ("get", "/v1/billing/ledger"): "listLedgerEntries",
    ("get", "/v1/billing/plans"): "listPlans",
    ("post", "/v1/billing/checkout"): "createCheckoutSession",
    ("post", "/v1/billing/portal"): "createPortalSession",
    ("post", "/v1/photos/uploads"): "createPhotoUploads",
    ("post", "/v1/photos/{photo_id}/complete"): "completePhotoUpload",
    ("get", "/v1/photos"): "listPhotos",
    ("get", "/v1/photos/{photo_id}"): "getPhoto",
    ("delete", "/v1/photos/{photo_id}"): "deletePhoto",
    ("post", "/v1/models"): "createModel",
    ("get", "/v1/models"): "listModels",
    ("get", "/v1/models/{model_id}"): "getModel",
    ("patch", "/v1/models/{model_id}"): "renameModel",
    ("post", "/v1/models/{model_id}/cancel"): "cancelModel",
    ("delete", "/v1/models/{model_id}"): "deleteModel",
    ("post", "/v1/generations"): "createGeneration",
    ("get", "/v1/generations"): "listGenerations",
    ("get", "/v1/generations/{generation_id}"): "getGeneration",
    ("post", "/v1/generations/{generation_id}/cancel"): "cancelGeneration",
    ("get", "/v1/images"): "listImages",
    ("get", "/v1/images/{image_id}"): "getImage",
    ("patch", "/v1/images/{image_id}"): "updateImage",
    ("delete", "/v1/images/{image_id}"): "deleteImage",
    ("get", "/v1/events"): "streamEvents",
    ("post", "/webhooks/stripe"): "receiveStripeWebhook",
    ("post", "/webhooks/replicate"): "receiveReplicateWebhook",
    ("post", "/webhooks/clerk"): "receiveClerkWebhook",
    ("get", "/v1/admin/jobs"): "adminListStuckJobs",
    ("post", "/v1/admin/jobs/{kind}/{job_id}/retry"): "adminRetryJob",
    ("post", "/v1/admin/jobs/{kind}/{job_id}/fail"): "adminFailJob",
    ("post", "/v1/admin/users/{user_id}/credits/grant"): "adminGrantCredits",
    ("post", "/v1/admin/users/{user_id}/credits/clawback"): "adminClawBackCredits",
    ("get", "/v1/admin/users/{user_id}"): "adminLookUpUser",
    ("get", "/v1/admin/dead-letters"): "adminListDeadLetters",
    ("post", "/v1/admin/dead-letters/{service}/{consumer}/{event_id}/replay"): (
        "adminReplayDeadLetter"
    ),
    ("post", "/v1/admin/dead-letters/{service}/{consumer}/{event_id}/discard"): (
        "adminDiscardDeadLetter"
    ),
    ("get", "/v1/admin/outbox"): "adminOutboxBacklog",
    ("get", "/healthz"): "checkLiveness",
    ("get", "/readyz"): "checkReadiness",
}
METHODS = ("get", "put", "post", "delete", "patch")


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return create_app()


@pytest.fixture(scope="module")
def spec(app: FastAPI) -> dict[str, Any]:
    return app.openapi()


def operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): operation
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }


def parameter(operation: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [p for p in operation.get("parameters", []) if p["name"] == name]
    return found


def string_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The string in an optional parameter's `anyOf` (string or null), or the schema."""
    (string,) = [s for s in schema.get("anyOf", [schema]) if s.get("type") == "string"]
    return string


def test_every_operation_has_its_chosen_id(spec: dict[str, Any]) -> None:
    ids = {key: op.get("operationId") for key, op in operations(spec).items()}
    assert ids == OPERATION_IDS
    assert all(re.fullmatch(r"[a-z]+(?:[A-Z][a-z]+)*", i) for i in OPERATION_IDS.values())


def test_every_operation_on_a_created_resource_is_reached_by_a_link(spec: dict[str, Any]) -> None:
    by_id = {op["operationId"]: (key, op) for key, op in operations(spec).items()}
    reached: set[str] = set()
    for (_, path), operation in operations(spec).items():
        for status, response in operation["responses"].items():
            for name, link in response.get("links", {}).items():
                target = link["operationId"]
                assert target in by_id, (path, name)
                (_, target_path), _ = by_id[target]
                wanted = set(re.findall(r"\{([^}]+)\}", target_path))
                assert set(link.get("parameters", {})) == wanted, (path, status, name)
                for expression in link.get("parameters", {}).values():
                    assert re.fullmatch(r"\$response\.body#(/[A-Za-z0-9_]+)+", expression)
                reached.add(target)
    # Operators' routes name any user's jobs and events, not a resource the caller created.
    needing_an_id = {
        op["operationId"]
        for (_, p), op in operations(spec).items()
        if "{" in p and not p.startswith("/v1/admin/")
    }
    assert needing_an_id <= reached, needing_an_id - reached
    # The creates themselves: each leads on to what reads, changes or deletes its resource.
    assert set(by_id["createModel"][1]["responses"]["202"]["links"]) >= {
        "GetModel",
        "RenameModel",
        "CancelModel",
        "DeleteModel",
    }


def test_only_the_price_list_is_open_without_a_session(spec: dict[str, Any]) -> None:
    """An empty requirement beside the bearer one: no token will do, a bad one will not
    (401). Every other /v1 operation needs the bearer token."""
    open_ops = {
        op["operationId"]
        for (_, path), op in operations(spec).items()
        if path.startswith("/v1/") and {} in op.get("security", [])
    }
    assert open_ops == {"listPlans"}
    plans = spec["paths"]["/v1/billing/plans"]["get"]
    assert plans["security"] == [{"HTTPBearer": []}, {}]
    assert plans["responses"]["401"]["description"] == "A session token that does not verify"
    current = spec["components"]["schemas"]["Catalogue"]["properties"]["current"]
    assert "without a session token, the free tier" in current["description"]
    for (_, path), op in operations(spec).items():
        if path.startswith("/v1/") and op["operationId"] != "listPlans":
            assert op.get("security") == [{"HTTPBearer": []}], path


@pytest.mark.parametrize(
    "path",
    [
        "/v1/me/audit",
        "/v1/photos",
        "/v1/models",
        "/v1/generations",
        "/v1/images",
    ],
)
def test_keyset_cursors_are_described_as_the_server_reads_them(
    spec: dict[str, Any], path: str
) -> None:
    schema = string_schema(parameter(spec["paths"][path]["get"], "cursor")["schema"])
    pattern = re.compile(schema["pattern"])
    made = encode_cursor(datetime.now(UTC), uuid.uuid4())
    assert pattern.search(made) and schema["minLength"] <= len(made) <= schema["maxLength"]
    assert decode_cursor(made) is not None
    # What the pattern refuses, the server refuses too (base64 alone would skip the junk).
    for junk in ("a+b", "a/b", "a=b", "a b", "¹"):
        assert not pattern.search(junk)


def test_the_ledger_cursor_is_a_row_id(spec: dict[str, Any]) -> None:
    schema = string_schema(
        parameter(spec["paths"]["/v1/billing/ledger"]["get"], "cursor")["schema"]
    )
    assert (schema["pattern"], schema["minLength"], schema["maxLength"]) == ("^[0-9]+$", 1, 19)


def test_trigger_words_are_described_as_training_checks_them(spec: dict[str, Any]) -> None:
    from visiona.training.domain import model as domain

    schema = string_schema(
        spec["components"]["schemas"]["CreateModelRequest"]["properties"]["trigger_word"]
    )
    assert schema["pattern"] == domain._TRIGGER.pattern
    assert (schema["minLength"], schema["maxLength"]) == (3, 32)


@pytest.mark.parametrize(
    "key", ["k", "a b", "x" * 255, "~!", " lead", "trail ", "", "x" * 256, "é", "tab\there"]
)
def test_idempotency_keys_are_described_as_the_edge_checks_them(
    spec: dict[str, Any], key: str
) -> None:
    schema = parameter(spec["paths"]["/v1/models"]["post"], "Idempotency-Key")["schema"]
    described = (
        schema["minLength"] <= len(key) <= schema["maxLength"]
        and re.search(schema["pattern"], key) is not None
    )
    # HTTP strips a header value's surrounding spaces before the edge sees it: the document
    # refuses them rather than promise a key the server would read as another.
    accepted = key == key.strip(" ") and _VALID_KEY.fullmatch(key.encode("utf-8")) is not None
    assert described is accepted


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/v1/models/abc", ["DELETE", "GET", "OPTIONS", "PATCH"]),
        ("/v1/models", ["GET", "OPTIONS", "POST"]),
        ("/v1/me", ["DELETE", "GET", "OPTIONS"]),
        ("/v1/images/abc", ["DELETE", "GET", "OPTIONS", "PATCH"]),
        ("/v1/models/abc/cancel", ["OPTIONS", "POST"]),
        # A concrete path is its own resource, not an id of the template beside it.
        ("/v1/photos/uploads", ["OPTIONS", "POST"]),
        ("/v1/photos/abc", ["DELETE", "GET", "OPTIONS"]),
        ("/v1/nothing", []),
    ],
)
def test_the_allowed_methods_are_those_of_every_route_of_the_path(
    app: FastAPI, path: str, expected: list[str]
) -> None:
    assert allowed_methods(app, path) == expected
