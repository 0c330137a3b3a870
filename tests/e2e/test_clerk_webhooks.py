"""Clerk's user lifecycle: Svix-signed webhooks provision and update accounts, once each."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from svix.webhooks import Webhook

from tests.support.stack import RunningStack
from tests.support.waiting import wait_for


def clerk(stack: RunningStack, method: str, path: str, body: Any = None) -> httpx.Response:
    """The Clerk emulator's Backend API, as the gateway's SDK calls it."""
    return httpx.request(
        method,
        f"{stack.cfg.clerk_issuer}/v1{path}",
        json=body,
        headers={"Authorization": f"Bearer {stack.cfg.clerk_secret_key}"},
        timeout=10,
    )


def create_clerk_user(stack: RunningStack, email: str, first: str = "Ada") -> str:
    response = clerk(
        stack, "POST", "/users", {"email_address": [email], "first_name": first, "last_name": "L"}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def wait_me(stack: RunningStack, user: str, want: dict[str, Any], timeout_s: float = 20) -> dict:
    return wait_for(
        f"/v1/me to show {want}",
        lambda: httpx.get(f"{stack.url}/v1/me", headers=stack.auth(user)).json(),
        lambda me: all(me.get(k) == v for k, v in want.items()),
        timeout_s,
    )


def signed(
    stack: RunningStack,
    event: dict[str, Any],
    *,
    secret: str | None = None,
    at: datetime | None = None,
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(event)
    msg_id = "msg_" + uuid.uuid4().hex
    when = at or datetime.now(UTC)
    signature = Webhook(secret or stack.cfg.clerk_webhook_secret).sign(msg_id, when, body)
    return body.encode(), {
        "svix-id": msg_id,
        "svix-timestamp": str(int(when.timestamp())),
        "svix-signature": signature,
        "content-type": "application/json",
    }


def user_event(kind: str, user_id: str, *, first: str, updated_at: int) -> dict[str, Any]:
    return {
        "type": kind,
        "object": "event",
        "timestamp": updated_at,
        "instance_id": "ins_test",
        "data": {
            "id": user_id,
            "object": "user",
            "first_name": first,
            "last_name": "L",
            "primary_email_address_id": "idn_1",
            "email_addresses": [{"id": "idn_1", "email_address": f"{user_id}@example.com"}],
            "updated_at": updated_at,
        },
    }


def test_user_created_then_updated_reaches_the_account(stack: RunningStack) -> None:
    email = f"ada-{uuid.uuid4().hex[:6]}@example.com"
    user_id = create_clerk_user(stack, email)
    wait_me(stack, user_id, {"email": email, "first_name": "Ada"})
    assert clerk(stack, "PATCH", f"/users/{user_id}", {"first_name": "Grace"}).status_code == 200
    wait_me(stack, user_id, {"first_name": "Grace"})
    # Clerk's retries may arrive late: the older user.created again changes nothing.
    deliveries = httpx.get(f"{stack.cfg.clerk_issuer}/_emulator/deliveries").json()
    mine = [d for d in deliveries if d["user_id"] == user_id]
    assert [(d["type"], d["status"]) for d in mine] == [
        ("user.created", 200),
        ("user.updated", 200),
    ]
    redeliver = f"{stack.cfg.clerk_issuer}/_emulator/deliveries/{mine[0]['svix_id']}/redeliver"
    assert httpx.post(redeliver).status_code == 200
    wait_for(
        "the redelivery to be sent",
        lambda: [d for d in _deliveries(stack) if d["user_id"] == user_id],
        lambda sent: len(sent) >= 3,
    )
    assert wait_me(stack, user_id, {"first_name": "Grace"})["email"] == email
    assert stack.admin_sql(
        "SELECT count(*) FROM gateway.clerk_webhooks WHERE svix_id = %s", mine[0]["svix_id"]
    ) == [(1,)]


def _deliveries(stack: RunningStack) -> list[dict[str, Any]]:
    response = httpx.get(f"{stack.cfg.clerk_issuer}/_emulator/deliveries")
    return list(response.json())


def test_a_redelivery_is_applied_once_and_an_older_update_never_wins(stack: RunningStack) -> None:
    user_id = f"user_{uuid.uuid4().hex[:12]}"
    newer, older = 2_000_000_000_000, 1_000_000_000_000
    body, headers = signed(
        stack, user_event("user.updated", user_id, first="New", updated_at=newer)
    )
    first = httpx.post(f"{stack.url}/webhooks/clerk", content=body, headers=headers)
    again = httpx.post(f"{stack.url}/webhooks/clerk", content=body, headers=headers)
    assert first.status_code == again.status_code == 200, first.text
    assert (first.json()["duplicate"], again.json()["duplicate"]) == (False, True)
    assert first.json()["event_id"] == headers["svix-id"]
    body, headers = signed(
        stack, user_event("user.updated", user_id, first="Old", updated_at=older)
    )
    assert httpx.post(f"{stack.url}/webhooks/clerk", content=body, headers=headers).is_success
    assert wait_me(stack, user_id, {"first_name": "New"})["email"] == f"{user_id}@example.com"
    rows = stack.admin_sql(
        "SELECT count(*) FROM gateway.clerk_webhooks WHERE svix_id = %s", headers["svix-id"]
    )
    assert rows == [(1,)]


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("forged", "signature_invalid"),
        ("tampered", "signature_invalid"),
        # Signed right, but out of svix's five minutes: not a bad signature.
        ("stale", "timestamp_too_old"),
        ("future", "timestamp_too_new"),
        ("stale_forged", "signature_invalid"),
        ("headerless", "signature_missing"),
        ("not_json", "invalid_payload"),
    ],
)
def test_unsigned_or_badly_signed_webhooks_are_refused_and_store_nothing(
    stack: RunningStack, case: str, code: str
) -> None:
    user_id = f"user_{uuid.uuid4().hex[:12]}"
    event = user_event("user.created", user_id, first="Mallory", updated_at=1)
    secret = None
    at = None
    if case in ("forged", "stale_forged"):
        secret = "whsec_" + "Zm9yZ2VkLXNlY3JldC1mb3ItdGVzdHM="
    if case in ("stale", "stale_forged"):
        at = datetime.now(UTC) - timedelta(minutes=10)
    elif case == "future":
        at = datetime.now(UTC) + timedelta(minutes=10)
    body, headers = signed(stack, event, secret=secret, at=at)
    if case == "tampered":
        body = body.replace(b"Mallory", b"Eve")
    elif case == "headerless":
        headers = {"content-type": "application/json"}
    elif case == "not_json":
        body, headers = b"not json", signed(stack, {})[1]
        headers["svix-signature"] = Webhook(stack.cfg.clerk_webhook_secret).sign(
            headers["svix-id"],
            datetime.fromtimestamp(int(headers["svix-timestamp"]), UTC),
            "not json",
        )
    response = httpx.post(f"{stack.url}/webhooks/clerk", content=body, headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == code
    if case == "stale":
        assert "too old" in response.json()["detail"]
    assert response.headers["content-type"].startswith("application/problem+json")
    assert stack.admin_sql("SELECT count(*) FROM gateway.accounts WHERE user_id = %s", user_id) == [
        (0,)
    ]
    if "svix-id" in headers and case != "not_json":
        assert stack.admin_sql(
            "SELECT count(*) FROM gateway.clerk_webhooks WHERE svix_id = %s", headers["svix-id"]
        ) == [(0,)]
