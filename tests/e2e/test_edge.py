"""The gateway's edge contract: problem+json errors, request ids, health and readiness."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import random
import re
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import httpx
import pytest

from tests.support.stack import RunningStack, extra_gateway
from tests.support.waiting import wait_for
from visiona.billing.v1 import billing_pb2, billing_pb2_grpc
from visiona.kit.grpcserver import INTERNAL_TOKEN_KEY
from visiona.kit.internal_token import Minter

PROBLEM = "application/problem+json"


def test_healthz_answers_without_dependencies(stack: RunningStack) -> None:
    response = httpx.get(f"{stack.url}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_every_service_ready(stack: RunningStack) -> None:
    response = httpx.get(f"{stack.url}/readyz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ready"] is True
    assert set(body["dependencies"]) == {
        "prompts",
        "training",
        "generation",
        "billing",
        "auth_keys",
        "database",
        "broker",
    }
    assert all(dep["ready"] for dep in body["dependencies"].values())


@pytest.mark.disruptive
def test_readyz_names_a_service_that_is_down(stack: RunningStack) -> None:
    stack.processes.stop("training")
    try:
        response = httpx.get(f"{stack.url}/readyz")
        assert response.status_code == 503
        body = response.json()
        assert body["ready"] is False
        assert body["dependencies"]["training"]["ready"] is False
        assert body["dependencies"]["prompts"]["ready"] is True
    finally:
        stack.processes.start("training")
        stack.processes.wait_ready()


@pytest.mark.disruptive
def test_graceful_stop_exits_cleanly(stack: RunningStack) -> None:
    assert stack.processes.stop("generation") == 0
    assert "service.stopped" in stack.processes.log("generation")
    stack.processes.start("generation")
    stack.processes.wait_ready()


def test_request_id_is_echoed_or_made(stack: RunningStack) -> None:
    given = httpx.get(f"{stack.url}/healthz", headers={"X-Request-ID": "req-1234567890"})
    assert given.headers["x-request-id"] == "req-1234567890"
    made = httpx.get(f"{stack.url}/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert made.headers["x-request-id"] != "bad id with spaces"
    assert len(made.headers["x-request-id"]) == 32


def test_invalid_body_is_422_problem_with_field_errors(stack: RunningStack) -> None:
    response = httpx.post(
        f"{stack.url}/v1/prompts/enhance", headers=stack.auth("edge"), json={"prompt": ""}
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["code"] == "validation_error"
    assert body["errors"][0]["loc"] == ["body", "prompt"]


def test_too_long_prompt_is_422(stack: RunningStack) -> None:
    response = httpx.post(
        f"{stack.url}/v1/prompts/enhance", headers=stack.auth("edge"), json={"prompt": "x" * 2001}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


def test_whitespace_prompt_is_rejected_by_the_service_with_its_code(stack: RunningStack) -> None:
    # Passes the edge's length check, fails the domain rule: the service's code comes through.
    response = httpx.post(
        f"{stack.url}/v1/prompts/enhance", headers=stack.auth("edge"), json={"prompt": "   "}
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["code"] == "prompt_empty"


def test_llm_outage_is_503_problem_and_nothing_is_stored(stack: RunningStack) -> None:
    emulator = f"http://127.0.0.1:{stack.cfg.ports['anthropic']}"
    httpx.post(f"{emulator}/_emulator/config", json={"fail_status": 529}).raise_for_status()
    try:
        response = httpx.post(
            f"{stack.url}/v1/prompts/enhance",
            headers=stack.auth("outage"),
            json={"prompt": "a castle at dusk"},
        )
    finally:
        httpx.post(f"{emulator}/_emulator/reset").raise_for_status()
    assert response.status_code == 503
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["code"] == "llm_unavailable"
    assert stack.admin_sql(
        "SELECT count(*) FROM prompts.enhancements WHERE user_id = 'user_outage'"
    ) == [(0,)]
    log = stack.processes.log("prompts")
    assert '"event": "llm.failed"' in log
    assert "castle" not in log  # the user's prompt never reaches the logs


def test_unknown_route_is_404_problem(stack: RunningStack) -> None:
    response = httpx.get(f"{stack.url}/v1/nothing-here", headers=stack.auth("edge"))
    assert response.status_code == 404
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["code"] == "route_not_found"


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/v1/models/0b5d3c1e-0000-4000-8000-000000000001", "DELETE, GET, OPTIONS, PATCH"),
        ("/v1/images/0b5d3c1e-0000-4000-8000-000000000002", "DELETE, GET, OPTIONS, PATCH"),
        ("/v1/me", "DELETE, GET, OPTIONS"),
        ("/v1/generations", "GET, OPTIONS, POST"),
        ("/v1/photos/uploads", "OPTIONS, POST"),
    ],
)
def test_options_and_405_name_every_method_of_the_path(
    stack: RunningStack, path: str, allowed: str
) -> None:
    options = httpx.options(f"{stack.url}{path}", headers=stack.auth("methods"))
    assert options.status_code == 204, options.text
    assert options.headers["allow"] == allowed
    refused = httpx.put(f"{stack.url}{path}", headers=stack.auth("methods"), json={})
    assert refused.status_code == 405, refused.text
    assert refused.headers["allow"] == allowed
    assert refused.json()["code"] == "method_not_allowed"
    unknown = httpx.options(f"{stack.url}/v1/nothing-here")
    assert unknown.status_code == 404


def test_openapi_describes_the_v1_routes(stack: RunningStack) -> None:
    spec = httpx.get(f"{stack.url}/openapi.json").json()
    assert {"/v1/me", "/v1/prompts/enhance", "/v1/usage"} <= set(spec["paths"])
    assert "HTTPBearer" in spec["components"]["securitySchemes"]


@pytest.mark.disruptive
def test_a_service_that_is_down_is_503_problem(stack: RunningStack) -> None:
    stack.processes.stop("billing")
    try:
        response = httpx.get(f"{stack.url}/v1/usage", headers=stack.auth("edge"))
        assert response.status_code == 503
        assert response.headers["content-type"].startswith(PROBLEM)
        assert response.json()["code"] == "service_unavailable"
    finally:
        stack.processes.start("billing")
        stack.processes.wait_ready()
    assert httpx.get(f"{stack.url}/v1/usage", headers=stack.auth("edge")).status_code == 200


# --- edge hardening: rate limits, idempotency keys, body limits, headers, CORS, audit ---------

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}
API_CSP = "default-src 'none'; frame-ancestors 'none'"
WEB_APP = "http://localhost:3000"
# Two instances with these share one budget: 5 requests per user, 8 per client address, each
# refilled at one request every 5 s (slow enough that a loaded machine does not refill a
# bucket between two requests of a test).
TIGHT = {
    "GATEWAY_USER_RATE_PER_S": "0.2",
    "GATEWAY_USER_BURST": "5",
    "GATEWAY_IP_RATE_PER_S": "0.2",
    "GATEWAY_IP_BURST": "8",
    "GATEWAY_SERVED_OVER_HTTPS": "true",
}
TIGHT_INTERVAL_S = 5.0


def new_user(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def new_ip() -> str:
    """A client address of the test's own, as a trusted proxy would name it."""
    return "10." + ".".join(str(random.randint(0, 255)) for _ in range(3))


@pytest.fixture(scope="module")
def tight(stack: RunningStack) -> Iterator[tuple[str, str]]:
    """Two more gateway instances with tight limits (the stack's own has limits far above
    what the suite does)."""
    with extra_gateway(stack, **TIGHT) as first, extra_gateway(stack, **TIGHT) as second:
        yield first, second


def flood(
    stack: RunningStack, urls: list[str], user: str | None, ip: str | None = None, n: int = 20
) -> list[httpx.Response]:
    """GET /v1/me until the first 429 (each request from a new address unless ``ip``, as a
    new user unless ``user``), round robin over ``urls``; the answers."""
    answers: list[httpx.Response] = []
    with httpx.Client(timeout=10) as client:
        for i in range(n):
            headers = {**stack.auth(user or new_user("someone")), "X-Forwarded-For": ip or new_ip()}
            answer = client.get(f"{urls[i % len(urls)]}/v1/me", headers=headers)
            answers.append(answer)
            if answer.status_code == 429:
                break
    return answers


def assert_limited(answer: httpx.Response, quota: int) -> int:
    assert answer.status_code == 429, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM)
    assert answer.json()["code"] == "rate_limited"
    retry_after = int(answer.headers["retry-after"])
    assert 1 <= retry_after <= TIGHT_INTERVAL_S
    assert answer.headers["ratelimit-limit"] == str(quota)
    assert answer.headers["ratelimit-remaining"] == "0"
    assert 0 < int(answer.headers["ratelimit-reset"]) <= quota * TIGHT_INTERVAL_S
    assert answer.headers["x-request-id"]
    return retry_after


def admitted_before_limit(answers: list[httpx.Response], burst: int) -> int:
    """How many got through before the 429: the burst, plus whatever refilled meanwhile, as
    the gateway itself reports it (a request that does not lower ``RateLimit-Remaining`` by
    one found a refill), not as a clock on this side would guess it."""
    assert answers[-1].status_code == 429, [a.status_code for a in answers]
    admitted = len(answers) - 1
    assert all(a.status_code == 200 for a in answers[:-1])
    remaining = [burst, *(int(a.headers["ratelimit-remaining"]) for a in answers[:-1])]
    refills = sum(max(0, now - (before - 1)) for before, now in itertools.pairwise(remaining))
    assert burst <= admitted <= burst + refills, (admitted, remaining)
    return admitted


def test_a_flooding_user_is_limited_while_another_user_goes_on(
    stack: RunningStack, tight: tuple[str, str]
) -> None:
    url = tight[0]
    flooder = new_user("flooder")
    answers = flood(stack, [url], flooder)
    admitted_before_limit(answers, 5)
    retry_after = assert_limited(answers[-1], 5)
    # The same moment, another user gets through, and learns their own budget.
    calm = httpx.get(
        f"{url}/v1/me", headers={**stack.auth(new_user("calm")), "X-Forwarded-For": new_ip()}
    )
    assert calm.status_code == 200
    assert (calm.headers["ratelimit-limit"], calm.headers["ratelimit-remaining"]) == ("5", "4")
    # Waiting as told is enough.
    time.sleep(retry_after)
    again = httpx.get(f"{url}/v1/me", headers={**stack.auth(flooder), "X-Forwarded-For": new_ip()})
    assert again.status_code == 200, again.text


def test_the_open_price_list_is_limited_per_address(
    stack: RunningStack, tight: tuple[str, str]
) -> None:
    """GET /v1/billing/plans needs no session: strangers calling it count against their
    address's budget, across instances, and another address goes on."""
    url, ip = tight[0], new_ip()
    answers: list[httpx.Response] = []
    with httpx.Client(timeout=10) as client:
        for i in range(20):
            answer = client.get(f"{tight[i % 2]}/v1/billing/plans", headers={"X-Forwarded-For": ip})
            answers.append(answer)
            if answer.status_code == 429:
                break
    admitted_before_limit(answers, 8)
    assert_limited(answers[-1], 8)
    other = httpx.get(f"{url}/v1/billing/plans", headers={"X-Forwarded-For": new_ip()})
    assert other.status_code == 200, other.text
    assert other.headers["ratelimit-limit"] == "8"


def test_a_flooding_address_is_limited_whoever_signs_in_from_it(
    stack: RunningStack, tight: tuple[str, str]
) -> None:
    url, ip = tight[0], new_ip()
    answers = flood(stack, [url], None, ip=ip)
    admitted_before_limit(answers, 8)
    assert_limited(answers[-1], 8)
    # Signed out or not, that address waits; health checks and other addresses do not.
    assert httpx.get(f"{url}/v1/me", headers={"X-Forwarded-For": ip}).status_code == 429
    assert httpx.get(f"{url}/healthz", headers={"X-Forwarded-For": ip}).status_code == 200
    other = httpx.get(
        f"{url}/v1/me", headers={**stack.auth(new_user("other")), "X-Forwarded-For": new_ip()}
    )
    assert other.status_code == 200
    # Webhooks have a bucket of their own (providers burst; their body is verified first).
    hook = httpx.post(f"{url}/webhooks/stripe", headers={"X-Forwarded-For": ip}, content=b"{}")
    assert hook.status_code == 400
    assert hook.json()["code"] == "signature_missing"


def test_ipv6_clients_are_limited_per_64(stack: RunningStack, tight: tuple[str, str]) -> None:
    url = tight[0]
    third, fourth = random.randint(0, 0xFFFF), random.randint(0, 0xFFFF)
    prefix = f"2001:db8:{third:x}:{fourth:x}"
    for i in range(8):
        answer = httpx.get(f"{url}/v1/me", headers={"X-Forwarded-For": f"{prefix}::{i + 1:x}"})
        assert answer.status_code == 401, answer.text
    same_64 = httpx.get(f"{url}/v1/me", headers={"X-Forwarded-For": f"{prefix}::beef"})
    assert same_64.status_code == 429
    # The next /64 (its last hextet one up: changing a digit to "f" was no change when it was one).
    neighbour = f"2001:db8:{third:x}:{(fourth + 1) % 0x10000:x}::1"
    next_64 = httpx.get(f"{url}/v1/me", headers={"X-Forwarded-For": neighbour})
    assert next_64.status_code == 401


def test_gateway_instances_share_one_budget(stack: RunningStack, tight: tuple[str, str]) -> None:
    user = new_user("roaming")
    answers = flood(stack, list(tight), user)
    # Alternating between two instances buys nothing: one budget of 5, not two.
    admitted_before_limit(answers, 5)
    served_by = {str(a.url).split("/v1/")[0] for a in answers[:-1]}
    assert served_by == set(tight)
    # Refused by one, refused by the other.
    for url in tight:
        answer = httpx.get(
            f"{url}/v1/me", headers={**stack.auth(user), "X-Forwarded-For": new_ip()}
        )
        assert_limited(answer, 5)


def test_hsts_only_when_served_over_https(stack: RunningStack, tight: tuple[str, str]) -> None:
    over_https = httpx.get(f"{tight[0]}/healthz")
    assert over_https.headers["strict-transport-security"].startswith("max-age=")
    assert "strict-transport-security" not in httpx.get(f"{stack.url}/healthz").headers


def checkout(
    stack: RunningStack, user: str, key: str | None, item: str = "starter", **headers: str
) -> httpx.Response:
    extra = {"Idempotency-Key": key} if key is not None else {}
    return httpx.post(
        f"{stack.url}/v1/billing/checkout",
        headers={**stack.auth(user), **extra, **headers},
        json={"kind": "pack", "item_id": item},
        timeout=60,
    )


def stripe_sessions(stack: RunningStack, user: str) -> list[dict[str, Any]]:
    """The checkout sessions the Stripe emulator holds for the user's customer."""
    rows = stack.admin_sql(
        "SELECT stripe_customer_id FROM billing.accounts WHERE user_id = %s", f"user_{user}"
    )
    if not rows or not rows[0][0]:
        return []
    answer = httpx.get(
        f"http://127.0.0.1:{stack.cfg.ports['stripe']}/v1/checkout/sessions",
        params={"customer": str(rows[0][0]), "limit": 100},
        headers={"Authorization": f"Bearer {stack.cfg.stripe_api_key}"},
    )
    answer.raise_for_status()
    return list(answer.json()["data"])


@contextlib.contextmanager
def stripe_faults(stack: RunningStack, **faults: object) -> Iterator[None]:
    emulator = f"http://127.0.0.1:{stack.cfg.ports['stripe']}/_emulator/config"
    httpx.post(emulator, json=faults).raise_for_status()
    try:
        yield
    finally:
        httpx.post(emulator, json={"latency_ms": 0, "fail_status": None}).raise_for_status()


def test_a_replayed_checkout_is_the_first_response_and_one_stripe_session(
    stack: RunningStack,
) -> None:
    user, key = new_user("replay"), f"checkout-{uuid.uuid4()}"
    first = checkout(stack, user, key)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    again = checkout(stack, user, key)
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    assert again.headers["content-type"] == first.headers["content-type"]
    assert again.headers["x-request-id"] != first.headers["x-request-id"]
    assert [s["id"] for s in stripe_sessions(stack, user)] == [first.json()["session_id"]]
    # Without a key, a second checkout is a second session.
    assert checkout(stack, user, None).status_code == 201
    assert len(stripe_sessions(stack, user)) == 2


def test_the_same_key_with_another_request_is_422(stack: RunningStack) -> None:
    user, key = new_user("reuse"), f"k-{uuid.uuid4()}"
    assert checkout(stack, user, key).status_code == 201
    other = checkout(stack, user, key, item="pro")
    assert other.status_code == 422
    assert other.headers["content-type"].startswith(PROBLEM)
    assert other.json()["code"] == "idempotency_key_reused"
    assert len(stripe_sessions(stack, user)) == 1


def test_another_user_may_use_the_same_key(stack: RunningStack) -> None:
    key = f"shared-{uuid.uuid4()}"
    alice, bob = new_user("alice"), new_user("bob")
    a, b = checkout(stack, alice, key), checkout(stack, bob, key, item="pro")
    assert (a.status_code, b.status_code) == (201, 201)
    assert "idempotent-replayed" not in b.headers
    assert a.json()["session_id"] != b.json()["session_id"]


def test_concurrent_requests_with_one_key_run_once(stack: RunningStack) -> None:
    """On a route whose service does not deduplicate on the key (the billing portal), a twin
    in flight is told to wait. (Checkout's twins reach billing, which makes them one session:
    test_idempotency_end_to_end.py.)"""
    user, key = new_user("racer"), f"race-{uuid.uuid4()}"
    assert checkout(stack, user, None).status_code == 201  # a customer to open a portal for

    def portal(_: object) -> httpx.Response:
        return httpx.post(
            f"{stack.url}/v1/billing/portal",
            headers={**stack.auth(user), "Idempotency-Key": key},
            timeout=60,
        )

    with stripe_faults(stack, latency_ms=1500), ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(portal, range(4)))
    ran = [a for a in answers if a.status_code == 201 and "idempotent-replayed" not in a.headers]
    assert len(ran) == 1, [(a.status_code, a.text) for a in answers]
    for answer in answers:
        if answer is ran[0]:
            continue
        if answer.status_code == 409:
            assert answer.json()["code"] == "idempotency_key_in_progress"
            assert answer.headers["retry-after"] == "1"
        else:
            assert answer.headers["idempotent-replayed"] == "true"
            assert answer.content == ran[0].content
    opened = [
        e for e in audit_entries(stack, user)["entries"] if e["action"] == "billing.portal_opened"
    ]
    assert len(opened) == 1
    assert portal(None).content == ran[0].content


def test_a_failed_attempt_gives_the_key_back(stack: RunningStack) -> None:
    user, key = new_user("unlucky"), f"retry-{uuid.uuid4()}"
    with stripe_faults(stack, fail_status=500):
        failed = checkout(stack, user, key)
    assert failed.status_code >= 500
    retried = checkout(stack, user, key)
    assert retried.status_code == 201, retried.text
    assert "idempotent-replayed" not in retried.headers


def test_a_malformed_idempotency_key_is_400(stack: RunningStack) -> None:
    user = new_user("badkey")
    for key in ("k" * 256, "caf\u00e9"):
        answer = httpx.post(
            f"{stack.url}/v1/billing/checkout",
            headers=[
                (b"authorization", stack.auth(user)["Authorization"].encode()),
                (b"idempotency-key", key.encode("latin-1")),
            ],
            json={"kind": "pack", "item_id": "starter"},
        )
        assert answer.status_code == 400
        assert answer.json()["code"] == "invalid_idempotency_key"
    assert stripe_sessions(stack, user) == []


def test_a_body_over_the_limit_is_413_declared_or_streamed(stack: RunningStack) -> None:
    url, limit = f"{stack.url}/v1/prompts/enhance", 1024 * 1024
    headers = {**stack.auth("bulky"), "Content-Type": "application/json"}
    declared = httpx.post(url, headers=headers, content=b" " * (limit + 1))
    assert declared.status_code == 413
    assert declared.headers["content-type"].startswith(PROBLEM)
    assert declared.json()["code"] == "body_too_large"
    assert (declared.json()["max_bytes"], declared.json()["max_size"]) == (limit, "1 MiB")
    assert declared.headers["x-content-type-options"] == "nosniff"

    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b" " * 65536

    streamed = httpx.post(url, headers=headers, content=chunks())
    assert streamed.status_code == 413
    assert streamed.json()["code"] == "body_too_large"
    # Under the limit, the route decides (an empty prompt is invalid).
    small = httpx.post(url, headers=headers, content=b'{"prompt": ""}' + b" " * (limit - 100))
    assert small.status_code == 422
    assert small.json()["code"] == "validation_error"


def test_every_answer_carries_the_security_headers(stack: RunningStack) -> None:
    health = httpx.get(f"{stack.url}/healthz")
    api = httpx.get(f"{stack.url}/v1/me", headers=stack.auth("headers"))
    refused = httpx.get(f"{stack.url}/v1/me")
    for answer in (health, api, refused):
        assert SECURITY_HEADERS.items() <= dict(answer.headers).items()
        assert answer.headers["content-security-policy"] == API_CSP
    assert api.headers["cache-control"] == "no-store"
    assert refused.headers["cache-control"] == "no-store"
    assert "cache-control" not in health.headers
    # A route that chose its own cache policy keeps it (the event stream).
    with httpx.stream("GET", f"{stack.url}/v1/events", headers=stack.auth("headers")) as stream:
        # No proxy may buffer or compress the live stream.
        assert stream.headers["cache-control"] == "no-cache, no-transform"


def test_the_docs_page_may_load_swagger_and_run_only_its_own_script(stack: RunningStack) -> None:
    docs = httpx.get(f"{stack.url}/docs")
    assert docs.status_code == 200
    csp = docs.headers["content-security-policy"]
    (script,) = re.findall(r"<script>(.*?)</script>", docs.text, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src https://cdn.jsdelivr.net 'sha256-{digest}';" in csp
    assert "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in csp and "connect-src 'self'" in csp


def test_cors_answers_the_configured_origin_only(stack: RunningStack) -> None:
    allowed = httpx.get(f"{stack.url}/v1/me", headers={**stack.auth("cors"), "Origin": WEB_APP})
    assert allowed.headers["access-control-allow-origin"] == WEB_APP
    assert allowed.headers["access-control-allow-credentials"] == "true"
    exposed = {
        h.strip().lower() for h in allowed.headers["access-control-expose-headers"].split(",")
    }
    assert {"retry-after", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"} <= exposed
    assert {"x-request-id", "idempotent-replayed"} <= exposed
    denied = httpx.get(
        f"{stack.url}/v1/me", headers={**stack.auth("cors"), "Origin": "https://evil.example"}
    )
    assert denied.status_code == 200
    assert not [h for h in denied.headers if h.startswith("access-control-")]
    assert "Origin" in denied.headers["vary"]

    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
    }
    ok = httpx.options(f"{stack.url}/v1/billing/checkout", headers={**preflight, "Origin": WEB_APP})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == WEB_APP
    assert "Idempotency-Key" in ok.headers["access-control-allow-headers"]
    assert "POST" in ok.headers["access-control-allow-methods"]
    assert ok.headers["x-content-type-options"] == "nosniff"
    refused = httpx.options(
        f"{stack.url}/v1/billing/checkout",
        headers={**preflight, "Origin": "https://evil.example"},
    )
    assert refused.status_code == 403
    assert not [h for h in refused.headers if h.startswith("access-control-")]


def audit_entries(stack: RunningStack, user: str, **params: str | int) -> dict[str, Any]:
    answer = httpx.get(f"{stack.url}/v1/me/audit", headers=stack.auth(user), params=params)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_checkout_portal_and_adjustments_are_audited(stack: RunningStack) -> None:
    user, key = new_user("audited"), f"audit-{uuid.uuid4()}"
    first = checkout(stack, user, key, **{"X-Request-ID": "audit-request-0001"})
    assert first.status_code == 201, first.text
    assert checkout(stack, user, key).headers["idempotent-replayed"] == "true"
    portal = httpx.post(f"{stack.url}/v1/billing/portal", headers=stack.auth(user))
    assert portal.status_code == 201, portal.text

    minter = Minter(stack.cfg.internal_token_secret, issuer="support-console")
    with grpc.insecure_channel(f"127.0.0.1:{stack.cfg.ports['billing']}") as channel:
        billing = billing_pb2_grpc.BillingServiceStub(channel)  # type: ignore[no-untyped-call]
        adjusted = billing.AdjustCredits(
            billing_pb2.AdjustCreditsRequest(
                user_id=f"user_{user}", delta=25, reason="goodwill", actor="ops:edge-test",
                idempotency_key=f"edge-{user}",
            ),
            metadata=((INTERNAL_TOKEN_KEY, minter.token(None)),),
            timeout=10,
        )  # fmt: skip
    assert adjusted.applied

    entries = wait_for(
        "the adjustment in the audit trail",
        lambda: audit_entries(stack, user)["entries"],
        lambda entries: any(e["action"] == "credits.adjusted" for e in entries),
        timeout_s=30,
    )
    assert [e["action"] for e in entries] == [
        "credits.adjusted",
        "billing.portal_opened",
        "billing.checkout_created",  # once: the replay did not check out again
    ]
    adjustment, _, created = entries
    assert adjustment["actor"] == "operator" and adjustment["details"]["balance"] == 25
    assert created["actor"] == "user"
    assert created["request_id"] == "audit-request-0001"
    assert created["details"] == {
        "kind": "pack",
        "item_id": "starter",
        "session_id": first.json()["session_id"],
    }
    # Pages of one, newest first; nobody else sees them.
    page = audit_entries(stack, user, limit=1)
    assert [e["id"] for e in page["entries"]] == [adjustment["id"]]
    rest = audit_entries(stack, user, limit=5, cursor=page["next_cursor"])
    assert [e["action"] for e in rest["entries"]] == [e["action"] for e in entries[1:]]
    assert rest["next_cursor"] is None
    assert audit_entries(stack, new_user("nosy"))["entries"] == []
    # The client's address is kept only as a keyed hash.
    rows = stack.admin_sql(
        "SELECT ip_hash FROM gateway.audit_log WHERE user_id = %s AND actor = 'user'",
        f"user_{user}",
    )
    assert len(rows) == 2
    assert all(isinstance(h, str) and len(h) == 64 and "127.0.0.1" not in h for (h,) in rows)


def test_a_user_being_erased_may_read_but_not_write(stack: RunningStack) -> None:
    user = new_user("erasing")
    user_id = f"user_{user}"
    stack.admin_sql(
        "INSERT INTO gateway.deletions (id, user_id, subject, source, status) "
        "VALUES (%s, %s, %s, 'api', 'erasing')",
        uuid.uuid4(),
        user_id,
        uuid.uuid4().hex,
    )
    try:
        write = httpx.post(
            f"{stack.url}/v1/prompts/enhance",
            headers=stack.auth(user),
            json={"prompt": "a lighthouse"},
        )
        assert write.status_code == 409
        assert write.headers["content-type"].startswith(PROBLEM)
        assert write.json()["code"] == "account_erasing"
        assert checkout(stack, user, None).json()["code"] == "account_erasing"
        assert httpx.get(f"{stack.url}/v1/me", headers=stack.auth(user)).status_code == 200
        balance = httpx.get(f"{stack.url}/v1/billing/balance", headers=stack.auth(user))
        assert balance.status_code == 200
        # Somebody else writes as usual.
        other = httpx.post(
            f"{stack.url}/v1/prompts/enhance",
            headers=stack.auth(new_user("bystander")),
            json={"prompt": "a lighthouse"},
        )
        assert other.status_code == 201, other.text
    finally:
        stack.admin_sql("DELETE FROM gateway.deletions WHERE user_id = %s", user_id)
    after = httpx.post(
        f"{stack.url}/v1/prompts/enhance", headers=stack.auth(user), json={"prompt": "a lighthouse"}
    )
    assert after.status_code == 201, after.text
