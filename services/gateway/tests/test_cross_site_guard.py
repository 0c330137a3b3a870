"""The cross-site guard's rules, on a bare app (no server): which requests made with the
session cookie reach a route, and which bodies under /v1 are read. End to end, and from a
real browser: tests/e2e/test_cross_site.py."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from visiona.gateway.edge.security import CrossSiteRequestGuard, is_json

WEB_APP = "https://app.visiona.example"
COOKIE = {"Cookie": "__session=token"}


async def reached(request: Request) -> JSONResponse:
    return JSONResponse({"reached": True})


def client() -> httpx.AsyncClient:
    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
    app = Starlette(
        routes=[
            Route("/v1/things", reached, methods=methods),
            Route("/webhooks/stripe", reached, methods=["POST"]),
        ]
    )
    guarded = CrossSiteRequestGuard(app, allow_origins=[WEB_APP])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=guarded), base_url="http://api")


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Origin": "https://evil.example"},
        {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        {"Origin": "https://other.visiona.example", "Sec-Fetch-Site": "same-site"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        # An allowed origin is matched exactly: scheme, host and port.
        {"Origin": "http://app.visiona.example"},
        {"Origin": f"{WEB_APP}:8443"},
    ],
)
async def test_a_write_with_the_cookie_from_anywhere_else_is_refused(
    method: str, headers: dict[str, str]
) -> None:
    async with client() as api:
        answer = await api.request(method, "/v1/things", headers={**COOKIE, **headers})
    assert answer.status_code == 403
    assert answer.json()["code"] == "cross_site_request"


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": WEB_APP},
        {"Origin": WEB_APP, "Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},
        # The gateway's own pages (/docs) in production, where the app shares its origin.
        {"Origin": "https://api.visiona.example", "Sec-Fetch-Site": "same-origin"},
    ],
)
async def test_a_write_with_the_cookie_from_our_pages_goes_through(
    headers: dict[str, str],
) -> None:
    async with client() as api:
        answer = await api.post("/v1/things", headers={**COOKIE, **headers}, json={})
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_reads_with_the_cookie_go_through_from_anywhere(method: str) -> None:
    async with client() as api:
        answer = await api.request(
            method, "/v1/things", headers={**COOKIE, "Origin": "https://evil.example"}
        )
    assert answer.status_code == 200


async def test_a_bearer_token_goes_through_from_anywhere() -> None:
    headers = {"Authorization": "Bearer token", "Origin": "https://evil.example", **COOKIE}
    async with client() as api:
        answer = await api.post("/v1/things", headers=headers, json={})
        without_cookie = await api.delete("/v1/things", headers={"Origin": "https://evil.example"})
    assert answer.status_code == 200
    assert without_cookie.status_code == 200


async def test_another_scheme_than_bearer_leaves_the_cookie_as_the_credential() -> None:
    headers = {"Authorization": "Basic dXNlcjpwdw==", "Origin": "https://evil.example", **COOKIE}
    async with client() as api:
        answer = await api.post("/v1/things", headers=headers, json={})
    assert answer.status_code == 403


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", b"a=1"),
        ("multipart/form-data; boundary=x", b"--x--"),
        ("text/plain", b"{}"),
        ("application/jsonp", b"{}"),
        ("json", b"{}"),
        (None, b"{}"),
    ],
)
async def test_a_body_under_v1_that_is_not_json_is_415(
    content_type: str | None, body: bytes
) -> None:
    headers = {"Authorization": "Bearer token"}
    if content_type:
        headers["Content-Type"] = content_type
    async with client() as api:
        answer = await api.post("/v1/things", headers=headers, content=body)
    assert answer.status_code == 415
    assert answer.json()["code"] == "unsupported_media_type"


async def test_a_streamed_body_is_a_body() -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        yield b"a=1"

    headers = {"Authorization": "Bearer token", "Content-Type": "text/plain"}
    async with client() as api:
        answer = await api.post("/v1/things", headers=headers, content=chunks())
    assert answer.status_code == 415


async def test_no_body_needs_no_type_and_webhooks_keep_theirs() -> None:
    async with client() as api:
        empty = await api.post(
            "/v1/things",
            headers={"Authorization": "Bearer t", "Content-Type": "text/plain"},
        )
        webhook = await api.post(
            "/webhooks/stripe",
            headers={"Content-Type": "text/plain", **COOKIE, "Origin": "https://evil.example"},
            content=b"raw",
        )
    assert empty.status_code == 200
    assert webhook.status_code == 200


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/json", True),
        ("Application/JSON; charset=utf-8", True),
        ("application/merge-patch+json", True),
        ("application/problem+json", True),
        ("application/x-www-form-urlencoded", False),
        ("text/json", False),
        ("application/jsonl", False),
        ("", False),
    ],
)
def test_what_counts_as_json(content_type: str, expected: bool) -> None:
    assert is_json(content_type) is expected
