"""Who is an operator (visiona.gateway.edge.auth.is_operator), and what everyone else hears
from an admin route: exactly the 404 of a route that does not exist. On a bare app with the
gateway's own error handlers and a real token verifier (no server); end to end, over every
admin route of the OpenAPI: tests/e2e/test_isolation.py and tests/e2e/test_admin.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException

from visiona.emulators.clerk import DEFAULT_AZP, DevIssuer, load_or_create_key
from visiona.gateway.config import GatewaySettings
from visiona.gateway.edge import problems
from visiona.gateway.edge.auth import CurrentOperator, is_operator, operator
from visiona.kit.auth import Principal, TokenVerifier
from visiona.kit.errors import DomainError

ISSUER = "http://clerk.test"


def settings(**values: Any) -> GatewaySettings:
    return GatewaySettings(clerk_issuer=ISSUER, **values)


def principal(user_id: str = "user_ops", **claims: Any) -> Principal:
    return Principal(user_id=user_id, session_id="sess_1", claims={"sub": user_id, **claims})


def test_nobody_is_an_operator_unless_configured() -> None:
    assert not is_operator(principal(metadata={"role": "operator"}), settings())
    assert not is_operator(None, settings(operator_user_ids="user_ops"))


def test_the_allow_list_names_operators_by_clerk_user_id() -> None:
    rule = settings(operator_user_ids="user_a, user_ops")
    assert rule.operator_user_ids == ["user_a", "user_ops"]
    assert is_operator(principal("user_ops"), rule)
    assert not is_operator(principal("user_opsx"), rule)
    assert not is_operator(principal("user_b"), rule)


def test_the_role_claim_makes_an_operator_when_it_matches_exactly() -> None:
    rule = settings(operator_role="operator")
    assert is_operator(principal(metadata={"role": "operator"}), rule)
    assert is_operator(principal(metadata={"role": ["viewer", "operator"]}), rule)
    assert not is_operator(principal(metadata={"role": "Operator"}), rule)
    assert not is_operator(principal(metadata={"role": "operators"}), rule)
    assert not is_operator(principal(metadata="operator"), rule)
    assert not is_operator(principal(role="operator"), rule)
    assert not is_operator(principal(), rule)


def test_the_role_claim_path_is_configurable() -> None:
    rule = settings(operator_role="ops", operator_role_claim="org.roles")
    assert is_operator(principal(org={"roles": ["ops"]}), rule)
    assert not is_operator(principal(metadata={"role": "ops"}), rule)


@pytest.fixture
def issuer(tmp_path: Path) -> DevIssuer:
    return load_or_create_key(tmp_path, issuer=ISSUER)


def admin_app(issuer: DevIssuer, **values: Any) -> FastAPI:
    app = FastAPI()
    app.state.settings = settings(**values)
    app.state.verifier = TokenVerifier(
        issuer=ISSUER, authorized_parties=[DEFAULT_AZP], pem_public_key=issuer.public_pem()
    )
    app.add_exception_handler(StarletteHTTPException, problems.http_error_handler)
    app.add_exception_handler(DomainError, problems.domain_error_handler)
    router = APIRouter(prefix="/v1/admin", dependencies=[Depends(operator)])

    @router.post("/things/{n}")
    async def thing(n: int, op: CurrentOperator) -> dict[str, str]:
        return {"operator": op.user_id}

    app.include_router(router)
    return app


async def call(app: FastAPI, path: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api"
    ) as client:
        # A path parameter that does not validate: a non-operator must not even learn that.
        return await client.post(path, headers=headers)


async def test_everyone_but_an_operator_hears_the_404_of_an_unknown_route(
    issuer: DevIssuer,
) -> None:
    app = admin_app(issuer, operator_role="operator", operator_user_ids="user_listed")
    unknown = await call(app, "/v1/nowhere", None)
    assert unknown.status_code == 404
    for token in (
        None,
        "not-a-token",
        issuer.issue("someone"),
        issuer.issue("someone", role="viewer"),
        issuer.issue("someone", ttl_s=-60, role="operator"),  # expired
    ):
        for path in ("/v1/admin/things/1", "/v1/admin/things/not-a-number"):
            refused = await call(app, path, token)
            assert refused.status_code == 404, (token, path)
            assert refused.headers["content-type"] == unknown.headers["content-type"]
            assert refused.json() == unknown.json()
    assert unknown.json()["code"] == "route_not_found"


async def test_an_operator_by_role_or_by_id_reaches_the_route(issuer: DevIssuer) -> None:
    app = admin_app(issuer, operator_role="operator", operator_user_ids="user_listed")
    by_role = await call(app, "/v1/admin/things/1", issuer.issue("ops", role="operator"))
    assert by_role.status_code == 200 and by_role.json() == {"operator": "user_ops"}
    by_id = await call(app, "/v1/admin/things/1", issuer.issue("listed"))
    assert by_id.status_code == 200 and by_id.json() == {"operator": "user_listed"}
    # An operator is told what is wrong with the request.
    invalid = await call(app, "/v1/admin/things/x", issuer.issue("listed"))
    assert invalid.status_code == 422
