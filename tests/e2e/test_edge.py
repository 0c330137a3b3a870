"""The gateway's edge contract: problem+json errors, request ids, health and readiness."""

from __future__ import annotations

import httpx

from tests.conftest import RunningStack

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
    }
    assert all(dep["ready"] for dep in body["dependencies"].values())


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


def test_openapi_describes_the_v1_routes(stack: RunningStack) -> None:
    spec = httpx.get(f"{stack.url}/openapi.json").json()
    assert {"/v1/me", "/v1/prompts/enhance", "/v1/usage"} <= set(spec["paths"])
    assert "HTTPBearer" in spec["components"]["securitySchemes"]


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
