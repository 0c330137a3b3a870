"""GET /v1/me in process (the gateway's own schema, no stack): whether the caller is an
operator, which the web app reads to show its operator console (ADR 0015)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from visiona.emulators.clerk import load_or_create_key
from visiona.gateway.app import create_app
from visiona.gateway.config import GatewaySettings


async def test_me_says_whether_the_caller_is_an_operator(
    tmp_path: Path, gateway_backing: dict[str, Any]
) -> None:
    issuer = load_or_create_key(tmp_path, issuer="http://127.0.0.1:9")
    settings = GatewaySettings(
        clerk_issuer=issuer.issuer,
        clerk_jwt_key=issuer.public_pem(),
        operator_role="operator",
        operator_user_ids="user_listed",
        log_format="console",
        **gateway_backing,
    )
    app = create_app(settings)
    callers = {
        "a user": (issuer.issue("plain"), False),
        "another role": (issuer.issue("viewer", role="viewer"), False),
        "the operator role": (issuer.issue("ops", role="operator"), True),
        "an operator by id": (issuer.issue("listed"), True),
    }
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client,
    ):
        for who, (token, operator) in callers.items():
            me = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
            assert me.status_code == 200, (who, me.text)
            assert me.json()["operator"] is operator, who
