"""The OpenAPI document, made to state every error the gateway really answers.

FastAPI documents only what a route declares, plus a 422 as ``HTTPValidationError`` in
``application/json`` — a body our handler never sends. After generation, every operation is
rewritten by rules, so a route added later is documented the same way without a list to keep:

- every error response naming ``Problem`` or FastAPI's validation error (which FastAPI adds
  to each operation it validates parameters or a body of) is ``application/problem+json``
  with the ``Problem`` schema, its ``status`` and ``title`` pinned;
- added where the route did not declare them:

  ====================================  =================================================
  operation                             answers
  ====================================  =================================================
  any                                   413 body too large, 429 rate limited, 500
  with a security requirement           401 (with ``WWW-Authenticate``)
  with a JSON request body              400 (a body that is not readable JSON text)
  with path parameters                  404 (nothing of the caller's by that id)
  under ``/v1/``, changing state        409 (``account_erasing``, or the state forbids it),
                                        403 (``cross_site_request``: the session cookie
                                        from a page not on an allowed origin) and 415
                                        (``unsupported_media_type``: a body not JSON)
  POST under ``/v1/``                   the ``Idempotency-Key`` header it honours, and
                                        400, 409, 422 for a bad, busy or reused key
  under ``/v1/`` or ``/webhooks/``      503 and 504 (a back service or a dependency is
                                        down, restarting or slow)
  ====================================  =================================================

- links from every operation that creates something to those that read, change or delete
  it (:data:`LINKS`), so a client, or schemathesis' stateful phase, can chain them;
- every response carries ``X-Request-ID`` (not on a 500: an unhandled error is answered
  outside the middleware that sets it); 409 and 429 may carry ``Retry-After``, and every 503
  problem does (``problems.RETRY_AFTER_S``; the 503 of ``/readyz`` is not a problem).

Schemathesis checks the document against the running stack (tests/e2e/test_fuzz.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from fastapi import FastAPI

from visiona.gateway.edge.problems import PROBLEM_JSON, TITLES, Problem

_REF = "#/components/schemas/"
_PROBLEM_REF = f"{_REF}Problem"
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

_ANY = {
    "413": "The request body is too large (`body_too_large`)",
    "429": "Too many requests (`rate_limited`); wait as `Retry-After` says",
    "500": "An unexpected error (`internal_error`); the request id helps us find it",
}
_UPSTREAM = {
    "503": "Something the request needs is unavailable or restarting; try again after "
    "`Retry-After` seconds. A back service cannot be reached (`service_unavailable`), a "
    "service or the API cannot reach its database, broker or storage "
    "(`dependency_unavailable`), a provider is down (the service's code, e.g. "
    "`llm_unavailable`), or an `Idempotency-Key` cannot be recorded (`idempotency_unavailable`)",
    "504": "A back service did not answer in time (`deadline_exceeded`)",
}
_UNAUTHENTICATED = "Missing or invalid session token"
_MALFORMED = "The body is not readable as JSON text (`malformed_body`)"
_NOT_FOUND = "No such resource of the caller (`not_found`), or no such path (`route_not_found`)"
_INVALID = "Invalid request (`validation_error`, with `errors`), or a code of the service"
_CONFLICT = (
    "The state forbids it (the `code` says how), the account is being erased "
    "(`account_erasing`), or a request with the same `Idempotency-Key` is still in progress "
    "(`idempotency_key_in_progress`)"
)
_CROSS_SITE = (
    "Made with the session cookie from a page that is not on an origin of "
    "`GATEWAY_CORS_ORIGINS` (`cross_site_request`); other clients send the token as "
    "`Authorization: Bearer`"
)
_NOT_JSON = "The body is not JSON (`unsupported_media_type`): send `Content-Type: application/json`"
_KEY_INVALID = "Bad `Idempotency-Key`: not 1-255 printable ASCII (`invalid_idempotency_key`)"
# 1-255 printable ASCII characters, as the edge checks (idempotency._VALID_KEY); HTTP strips a
# header value's surrounding spaces before the edge sees it, so none may begin or end one.
IDEMPOTENCY_KEY_PATTERN = "^[!-~](?:[ -~]*[!-~])?$"
_KEY_REUSED = "The `Idempotency-Key` was used for a different request (`idempotency_key_reused`)"
_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Makes a retry safe: the same key with the same request, within 24 hours, "
    "replays the first answer (`Idempotent-Replayed: true`) instead of doing it again",
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": 255,
        "pattern": IDEMPOTENCY_KEY_PATTERN,
    },
}
_RETRY_AFTER = ("409", "429", "503")

_HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {
        "description": "The request id: the caller's `X-Request-ID` if usable, else a new one",
        "required": True,
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9._-]{8,128}$"},
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "schema": {"type": "integer", "minimum": 0},
    },
    "WWW-Authenticate": {
        "description": "The Bearer challenge",
        "required": True,
        "schema": {"type": "string"},
    },
}
_HEADER_REF = "#/components/headers/"


class Link(NamedTuple):
    """From an operation's answer to the operations that take what it created."""

    status: str
    parameter: str | None  # the path parameter of the targets, None when they take none
    value: str | None  # where the answer holds it: a runtime expression
    targets: tuple[str, ...]  # operation ids


LINKS: dict[str, Link] = {
    "createPhotoUploads": Link(
        "201",
        "photo_id",
        "$response.body#/uploads/0/photo_id",
        ("completePhotoUpload", "getPhoto", "deletePhoto"),
    ),
    "createModel": Link(
        "202",
        "model_id",
        "$response.body#/id",
        ("getModel", "renameModel", "cancelModel", "deleteModel"),
    ),
    "createGeneration": Link(
        "202", "generation_id", "$response.body#/id", ("getGeneration", "cancelGeneration")
    ),
    # A generation's images are made by it: once stored, they are in its answer.
    "getGeneration": Link(
        "200", "image_id", "$response.body#/images/0/id", ("getImage", "updateImage", "deleteImage")
    ),
    "createExport": Link("202", "export_id", "$response.body#/id", ("getExport",)),
    "deleteAccount": Link("202", None, None, ("getAccountDeletion",)),
}


Responses = dict[int | str, dict[str, Any]]


def problems(descriptions: Mapping[int, str | None]) -> Responses:
    """The problems a route answers in its own words, where the rules' general wording would
    say less (None: no words of its own); the rules add everything else (401, 404, 409, 413,
    429, 500, 503...) to every operation."""
    return {
        status: {"model": Problem} if text is None else {"model": Problem, "description": text}
        for status, text in descriptions.items()
    }


def unavailable(description: str) -> Responses:
    """A route's own wording of its 503 (which back service or provider it waits on)."""
    return problems({503: description})


NOT_FOUND = "No such resource of the caller"
INVALID = "Invalid request"


def document_problems(app: FastAPI) -> None:
    """Serve ``app``'s OpenAPI document with every problem response it can answer."""
    generate: Callable[[], dict[str, Any]] = app.openapi
    shaped: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        schema = generate()
        # FastAPI keeps the document until routes change; shape each new one once.
        if not shaped or shaped[0] is not schema:
            shape(schema)
            shaped[:] = [schema]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def shape(schema: dict[str, Any]) -> None:
    """Rewrite a generated OpenAPI document in place (see the module docstring)."""
    schema.setdefault("components", {}).setdefault("headers", {}).update(_HEADERS)
    components = schema["components"].setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template=_REF + "{model}", mode="serialization")
    components.update(problem.pop("$defs", {}))
    components["Problem"] = problem
    for path, item in schema.get("paths", {}).items():
        for method in _METHODS:
            if method in item:
                _document_operation(path, method, item[method])
                _link(item[method])
    _drop_unused(schema, components)


def _link(operation: dict[str, Any]) -> None:
    link = LINKS.get(operation.get("operationId", ""))
    if link is None:
        return
    response = operation["responses"][link.status]
    parameters = {link.parameter: link.value} if link.parameter and link.value else {}
    response["links"] = {
        target[0].upper() + target[1:]: {"operationId": target, "parameters": parameters}
        for target in link.targets
    }


def _document_operation(path: str, method: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    for status, response in responses.items():
        if _names_problem(response):
            response["content"] = _problem_content(status)
            if response.get("description") == "Validation Error":  # FastAPI's default
                response["description"] = _INVALID
    parameters: list[dict[str, Any]] = operation.setdefault("parameters", [])
    secured = bool(operation.get("security"))
    api = path.startswith("/v1/")
    wanted: dict[str, str] = dict(_ANY)
    if secured:
        wanted["401"] = _UNAUTHENTICATED
    if "application/json" in operation.get("requestBody", {}).get("content", {}):
        wanted["400"] = _MALFORMED
    if any(p.get("in") == "path" for p in parameters):
        wanted["404"] = _NOT_FOUND
    if api and method != "get":
        wanted["409"] = _CONFLICT
        wanted["403"] = _CROSS_SITE
        wanted["415"] = _NOT_JSON
    if api and method == "post":
        if not any(p.get("name", "").lower() == "idempotency-key" for p in parameters):
            parameters.append(_IDEMPOTENCY_KEY)
        wanted["400"] = f"{wanted['400']}. {_KEY_INVALID}" if "400" in wanted else _KEY_INVALID
        wanted["422"] = _KEY_REUSED
    if api or path.startswith("/webhooks/"):
        wanted.update(_UPSTREAM)
    if not parameters:
        del operation["parameters"]
    for status, description in wanted.items():
        if status not in responses:
            responses[status] = {"description": description, "content": _problem_content(status)}
    for status, response in responses.items():
        headers = response.setdefault("headers", {})
        if status == "500":
            headers.setdefault("X-Request-ID", {**_HEADERS["X-Request-ID"], "required": False})
        else:
            headers.setdefault("X-Request-ID", {"$ref": _HEADER_REF + "X-Request-ID"})
        if status in _RETRY_AFTER:
            headers.setdefault("Retry-After", {"$ref": _HEADER_REF + "Retry-After"})
        if status == "401" and secured:
            headers.setdefault("WWW-Authenticate", {"$ref": _HEADER_REF + "WWW-Authenticate"})
    operation["responses"] = dict(sorted(responses.items()))


def _names_problem(response: dict[str, Any]) -> bool:
    refs = {media.get("schema", {}).get("$ref") for media in response.get("content", {}).values()}
    return bool(refs & {_PROBLEM_REF, *(_REF + name for name in _FASTAPI_VALIDATION)})


def _problem_content(status: str) -> dict[str, Any]:
    pinned: dict[str, Any] = {"allOf": [{"$ref": _PROBLEM_REF}]}
    if status.isdigit():
        pinned["properties"] = {
            "status": {"const": int(status)},
            "title": {"const": TITLES.get(int(status), "Error")},
        }
    return {PROBLEM_JSON: {"schema": pinned}}


def _drop_unused(schema: dict[str, Any], components: dict[str, Any]) -> None:
    """Remove FastAPI's validation-error schemas once nothing refers to them."""
    for name in _FASTAPI_VALIDATION:
        rest = {k: v for k, v in components.items() if k != name}
        text = json.dumps([schema.get("paths", {}), rest])
        if name in components and f'"{_REF}{name}"' not in text:
            del components[name]
