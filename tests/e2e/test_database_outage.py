"""A back service whose database goes away answers "unavailable, try again" (503 with
Retry-After, code ``dependency_unavailable``), not 500. The database goes away for that
service alone: its connections are terminated and its role may not log in for a while (an
attribute of the run's own throw-away role; the server is not touched)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.support.stack import RunningStack
from tests.support.waiting import wait_for

PROBLEM = "application/problem+json"


@pytest.mark.disruptive
def test_a_service_that_lost_its_database_answers_503_with_retry_after(
    stack: RunningStack,
) -> None:
    role = stack.cfg.roles("billing").app
    headers = stack.auth(f"db-outage-{uuid.uuid4().hex[:8]}")
    balance = f"{stack.url}/v1/billing/balance"
    assert httpx.get(balance, headers=headers, timeout=30).status_code == 200
    try:
        stack.admin_sql(f'ALTER ROLE "{role}" NOLOGIN')
        terminated = stack.admin_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", role
        )
        assert terminated, "billing had no connection to take away"
        # The first finds its pooled connection dead, the next cannot open a new one.
        for _ in range(2):
            response = httpx.get(balance, headers=headers, timeout=30)
            assert response.status_code == 503, response.text
            assert response.headers["content-type"].startswith(PROBLEM)
            assert int(response.headers["retry-after"]) >= 1
            assert response.json()["code"] == "dependency_unavailable"
    finally:
        stack.admin_sql(f'ALTER ROLE "{role}" LOGIN')
    wait_for(
        "billing to answer again once its database is back",
        lambda: httpx.get(balance, headers=headers, timeout=30).status_code,
        lambda status: status == 200,
        timeout_s=60,
    )
