"""Cross-site requests: the ``__session`` cookie only works from the web app's own origins.

A browser attaches the cookie to any request for the gateway, whichever page made it. Every
state-changing request made with the cookie must come from an origin in
``GATEWAY_CORS_ORIGINS`` (or say ``Sec-Fetch-Site: same-origin``), else 403
``cross_site_request`` and nothing runs; and ``/v1`` reads JSON bodies only (415), so neither
an HTML form nor a preflight-free ``fetch`` can reach a route. A bearer token is unaffected:
no browser sends one on its own. Checked with plain HTTP requests, and from real pages in
chromium: one on another origin that attacks, one on an allowed origin that works.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page

from tests.e2e.test_billing import balance
from tests.e2e.test_generation import ready_owner
from tests.support.browser import chromium, serving
from tests.support.stack import WEB_APP_HOST, RunningStack
from visiona.emulators.ports import free_port

PROBLEM = "application/problem+json"
WEB_APP = "http://localhost:3000"  # in GATEWAY_CORS_ORIGINS
EVIL = "https://evil.example"
STATE_CHANGING = ("post", "put", "patch", "delete")

# What a request could have started, per table (each has the user's id in `user_id`).
TRACES = (
    "gateway.exports",
    "gateway.deletions",
    "prompts.enhancements",
    "training.models",
    "generation.generations",
    "billing.checkout_sessions",
    "billing.holds",
    "billing.ledger_entries",
)


def traces(stack: RunningStack, user: str) -> dict[str, int]:
    """How many rows of each table in TRACES the user has."""
    return {
        table: int(stack.admin_sql(f"SELECT count(*) FROM {table} WHERE user_id = %s", user)[0][0])
        for table in TRACES
    }


def new_user(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def with_cookie(stack: RunningStack, user: str) -> dict[str, str]:
    return {"Cookie": f"__session={stack.token(user)}"}


def enhance(stack: RunningStack, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(
        f"{stack.url}/v1/prompts/enhance", headers=headers, json={"prompt": "me on a beach"}
    )


def assert_problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["code"] == code


def state_changing_operations(stack: RunningStack) -> list[tuple[str, str]]:
    """Every state-changing operation under /v1 the OpenAPI document lists, with an id of
    nobody's in its path."""
    spec = httpx.get(f"{stack.url}/openapi.json").json()
    nobody = str(uuid.uuid4())
    return [
        (method.upper(), re.sub(r"\{[^}]+\}", nobody, path))
        for path, item in spec["paths"].items()
        if path.startswith("/v1/")
        for method in item
        if method in STATE_CHANGING
    ]


# --- curl-like: headers as any client may send them ------------------------------------------


def test_every_state_changing_request_with_the_cookie_from_another_site_is_403(
    stack: RunningStack,
) -> None:
    user = new_user("csrf")
    before = traces(stack, f"user_{user}")
    operations = state_changing_operations(stack)
    assert len(operations) >= 15, operations
    for method, path in operations:
        for headers in (
            {"Origin": EVIL},
            {"Origin": EVIL, "Sec-Fetch-Site": "cross-site"},
            # A sibling origin of the same site is another origin all the same.
            {"Origin": "http://127.0.0.1:1", "Sec-Fetch-Site": "same-site"},
            {"Sec-Fetch-Site": "cross-site"},
            {"Origin": "null"},
            {},  # a cookie and nothing to say where the request came from
        ):
            response = httpx.request(
                method,
                f"{stack.url}{path}",
                headers={**with_cookie(stack, user), **headers},
                json={} if method != "DELETE" else None,
            )
            assert response.status_code == 403, (method, path, headers, response.text)
            assert response.json()["code"] == "cross_site_request", response.text
    assert traces(stack, f"user_{user}") == before


def test_the_cookie_works_from_an_allowed_origin_or_the_same_origin(stack: RunningStack) -> None:
    user = new_user("web")
    for headers in (
        {"Origin": WEB_APP, "Sec-Fetch-Site": "cross-site"},
        {"Origin": stack.web_origin},
        {"Sec-Fetch-Site": "same-origin"},
        {"Origin": stack.url, "Sec-Fetch-Site": "same-origin"},
    ):
        response = enhance(stack, {**with_cookie(stack, user), **headers})
        assert response.status_code == 201, (headers, response.text)
    assert traces(stack, f"user_{user}")["prompts.enhancements"] == 4
    # Reading changes nothing: allowed from anywhere (CORS keeps the answer from other pages).
    read = httpx.get(f"{stack.url}/v1/me", headers={**with_cookie(stack, user), "Origin": EVIL})
    assert read.status_code == 200, read.text
    assert not [h for h in read.headers if h.startswith("access-control-")]


def test_a_bearer_token_is_not_subject_to_the_origin_check(stack: RunningStack) -> None:
    user = new_user("bearer")
    # A cookie beside the header is ignored: the header is the credential.
    headers = {**stack.auth(user), **with_cookie(stack, user), "Origin": EVIL}
    assert enhance(stack, headers).status_code == 201


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", b'{"prompt":"me on a beach"}'),
        ("text/plain", b'{"prompt":"me on a beach"}'),
        ("text/plain;charset=UTF-8", b'{"prompt":"me on a beach"}'),
        ("multipart/form-data; boundary=x", b'--x\r\nContent-Disposition: form-data; name="a"'),
        ("application/xml", b"<prompt/>"),
        (None, b'{"prompt":"me on a beach"}'),
    ],
    ids=["form", "text", "text-charset", "multipart", "xml", "no-type"],
)
def test_a_body_that_is_not_json_is_415_and_nothing_runs(
    stack: RunningStack, content_type: str | None, body: bytes
) -> None:
    user = new_user("media")
    headers = stack.auth(user) | ({"Content-Type": content_type} if content_type else {})
    response = httpx.post(f"{stack.url}/v1/prompts/enhance", headers=headers, content=body)
    assert_problem(response, 415, "unsupported_media_type")
    assert "application/json" in response.json()["detail"]
    assert traces(stack, f"user_{user}")["prompts.enhancements"] == 0


def test_every_route_with_a_body_refuses_a_form(stack: RunningStack) -> None:
    user = new_user("forms")
    spec = httpx.get(f"{stack.url}/openapi.json").json()
    with_bodies = [
        (method.upper(), re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path))
        for path, item in spec["paths"].items()
        if path.startswith("/v1/")
        for method, operation in item.items()
        if "requestBody" in operation
    ]
    assert len(with_bodies) >= 7, with_bodies
    for method, path in with_bodies:
        response = httpx.request(
            method,
            f"{stack.url}{path}",
            headers={**stack.auth(user), "Content-Type": "application/x-www-form-urlencoded"},
            content=b"a=1",
        )
        assert response.status_code == 415, (method, path, response.text)
    before = traces(stack, f"user_{user}")
    assert before == dict.fromkeys(TRACES, 0)


def test_json_types_and_requests_without_a_body_are_read(stack: RunningStack) -> None:
    user = new_user("json")
    for content_type in ("application/json; charset=utf-8", "application/problem+json"):
        response = httpx.post(
            f"{stack.url}/v1/prompts/enhance",
            headers={**stack.auth(user), "Content-Type": content_type},
            content=b'{"prompt":"me on a beach"}',
        )
        assert response.status_code == 201, response.text
    # No body, whatever the declared type: nothing to read (a form with no fields is the
    # cookie check's to refuse, above).
    export = httpx.post(
        f"{stack.url}/v1/me/export",
        headers={**stack.auth(user), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert export.status_code == 202, export.text


# --- a real browser --------------------------------------------------------------------------

ATTACKER_PAGE = """<!doctype html>
<title>win a prize</title>
<form id="export" method="post" action="{gateway}/v1/me/export"></form>
<form id="checkout" method="post" enctype="text/plain" action="{gateway}/v1/billing/checkout">
  <input name='{{"kind":"pack","item_id":"starter","x":"' value='"}}'>
</form>
"""

WEB_APP_PAGE = """<!doctype html>
<title>the web app</title>
<form id="form" method="post" action="{gateway}/v1/prompts/enhance">
  <input name="prompt" value="me on a beach">
</form>
"""

# A `fetch` no page needs CORS for: a "simple" request (POST, a form's content type), sent with
# the cookie, its answer opaque to the page. Before the fix the gateway read the body as JSON.
SIMPLE_FETCH = """async ([url, body]) => {
  await fetch(url, {
    method: "POST", mode: "no-cors", credentials: "include",
    headers: {"Content-Type": "application/x-www-form-urlencoded"},
    body: JSON.stringify(body),
  });
}"""

# What the web app does: JSON with the cookie, after a CORS preflight.
APP_FETCH = """async ([url, body]) => {
  const answer = await fetch(url, {
    method: "POST", credentials: "include",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify(body),
  });
  return {status: answer.status, body: await answer.json()};
}"""


def signed_in(context: BrowserContext, stack: RunningStack, user: str) -> None:
    """The session cookie as Clerk sets it, for the gateway's host (every port of it)."""
    context.add_cookies(
        [
            {
                "name": "__session",
                "value": stack.token(user),
                "url": stack.url,
                "httpOnly": True,
                "sameSite": "Lax",
            }
        ]
    )


def submit(page: Page, form: str) -> tuple[int, dict[str, Any]]:
    """Submit a form of the page; the gateway's answer (the page navigates to it)."""
    with page.expect_navigation() as navigation:
        page.evaluate(f"document.getElementById('{form}').submit()")
    response = navigation.value
    assert response is not None
    return response.status, json.loads(response.text())


def simple_fetch(page: Page, url: str, body: dict[str, Any]) -> int:
    """The page's opaque fetch; the status of the gateway's answer as the browser received it
    (its body is kept from the page, and from the browser's tooling too)."""
    with page.expect_response(lambda r: r.url == url and r.request.method == "POST") as answer:
        page.evaluate(SIMPLE_FETCH, [url, body])
    return answer.value.status


def test_a_page_on_another_origin_cannot_act_for_a_signed_in_browser(stack: RunningStack) -> None:
    name, model = ready_owner(stack, "victim")
    user = f"user_{name}"
    before, credits = traces(stack, user), balance(stack, name)
    gateway = stack.url
    with (
        serving(ATTACKER_PAGE.format(gateway=gateway), WEB_APP_HOST, free_port()) as attacker,
        chromium() as browser,
    ):
        context = browser.new_context()
        signed_in(context, stack, name)
        page = context.new_page()
        page.goto(attacker)
        # Same site (127.0.0.1), another origin: the browser sends the Lax cookie.
        status, problem = submit(page, "export")
        assert (status, problem["code"]) == (403, "cross_site_request")
        page.goto(attacker)
        status, problem = submit(page, "checkout")
        assert (status, problem["code"]) == (403, "cross_site_request")
        page.goto(attacker)
        for path, body in (
            ("/v1/prompts/enhance", {"prompt": "me on a beach"}),
            ("/v1/generations", {"model_id": model["id"], "prompt": "me", "num_outputs": 4}),
            ("/v1/billing/checkout", {"kind": "pack", "item_id": "starter"}),
        ):
            # 403 only for a request with the cookie (without it, a form type is 415).
            assert simple_fetch(page, f"{gateway}{path}", body) == 403, path
        context.close()
    assert traces(stack, user) == before
    assert balance(stack, name) == credits


def test_a_page_on_an_allowed_origin_works_with_the_cookie(stack: RunningStack) -> None:
    name = new_user("webapp")
    gateway = stack.url
    with (
        serving(WEB_APP_PAGE.format(gateway=gateway), WEB_APP_HOST, stack.page_port) as web_app,
        chromium() as browser,
    ):
        assert web_app == stack.web_origin
        context = browser.new_context()
        signed_in(context, stack, name)
        page = context.new_page()
        page.goto(web_app)
        enhanced = page.evaluate(
            APP_FETCH, [f"{gateway}/v1/prompts/enhance", {"prompt": "me on a beach"}]
        )
        assert enhanced["status"] == 201, enhanced
        assert enhanced["body"]["prompt"] == "me on a beach"
        exported = page.evaluate(APP_FETCH, [f"{gateway}/v1/me/export", {}])
        assert exported["status"] == 202, exported
        # Even from an allowed origin, a form is not JSON: refused, nothing runs.
        status, problem = submit(page, "form")
        assert (status, problem["code"]) == (415, "unsupported_media_type")
        context.close()
    started = traces(stack, f"user_{name}")
    assert (started["prompts.enhancements"], started["gateway.exports"]) == (1, 1)
