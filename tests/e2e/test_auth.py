"""Session tokens at the gateway: only a valid Clerk-shaped RS256 token gets in."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.stack import RunningStack

PROBLEM = "application/problem+json"


def _me(stack: RunningStack, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.get(f"{stack.url}/v1/me", headers=headers)


def _assert_unauthorized(response: httpx.Response, code: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == 401
    assert body["code"] == code
    assert body["request_id"] == response.headers["x-request-id"]
    assert response.headers["www-authenticate"].startswith("Bearer")


def _claims(stack: RunningStack, **overrides: object) -> dict[str, object]:
    token = stack.token("claims-user")
    claims: dict[str, object] = jwt.decode(token, options={"verify_signature": False})
    claims.update(overrides)
    return claims


def test_valid_token_identifies_the_user(stack: RunningStack) -> None:
    response = _me(stack, stack.token("alice"))
    assert response.status_code == 200
    body = response.json()
    assert body["user_id"] == "user_alice"
    assert body["session_id"].startswith("sess_")
    assert body["authorized_party"] == "http://localhost:3000"


def test_session_cookie_is_accepted_like_a_bearer_header(stack: RunningStack) -> None:
    response = httpx.get(f"{stack.url}/v1/me", cookies={"__session": stack.token("cookie")})
    assert response.status_code == 200
    assert response.json()["user_id"] == "user_cookie"


def test_missing_token_is_401(stack: RunningStack) -> None:
    _assert_unauthorized(_me(stack, None), "missing_token")


def test_token_signed_by_another_key_is_401(stack: RunningStack) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(_claims(stack), other, algorithm="RS256", headers={"kid": stack.issuer.kid})
    _assert_unauthorized(_me(stack, forged), "invalid_token")


def test_token_with_tampered_claims_is_401(stack: RunningStack) -> None:
    header, payload, signature = stack.token("mallory").split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = "user_alice"
    tampered = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    _assert_unauthorized(_me(stack, f"{header}.{tampered}.{signature}"), "invalid_token")


def test_expired_token_is_401_and_says_how_to_get_a_new_one(stack: RunningStack) -> None:
    response = _me(stack, stack.token("late", ttl_s=-60))
    _assert_unauthorized(response, "token_expired")
    # The local stack's way to a new session token, named where the refusal is read.
    detail = response.json()["detail"]
    assert detail.startswith("the session token has expired: get a new one"), detail
    assert "visiona login --dev" in detail and "make -s token USER=" in detail
    assert response.headers["www-authenticate"] == (
        'Bearer realm="visiona", error="invalid_token", '
        'error_description="the session token has expired"'
    )


def test_token_not_yet_valid_is_401(stack: RunningStack) -> None:
    now = int(time.time())
    early = stack.issuer.issue("early", extra_claims={"nbf": now + 600, "iat": now + 600})
    _assert_unauthorized(_me(stack, early), "invalid_token")


def test_token_from_an_unlisted_authorized_party_is_401(stack: RunningStack) -> None:
    _assert_unauthorized(
        _me(stack, stack.token("azp", azp="https://evil.example")), "invalid_token"
    )


def test_token_from_another_issuer_is_401(stack: RunningStack) -> None:
    token = stack.issuer.issue("iss", extra_claims={"iss": "https://clerk.other.example"})
    _assert_unauthorized(_me(stack, token), "invalid_token")


def test_alg_none_token_is_401(stack: RunningStack) -> None:
    header = {"alg": "none", "typ": "JWT", "kid": stack.issuer.kid}

    def b64(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    _assert_unauthorized(_me(stack, f"{b64(header)}.{b64(_claims(stack))}."), "invalid_token")


def test_hmac_token_keyed_with_the_public_key_is_401(stack: RunningStack) -> None:
    # The classic algorithm-confusion attack: HS256 keyed with the RSA public key.
    # (pyjwt refuses to sign with a PEM as HMAC key, so the token is assembled by hand.)
    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    header = {"alg": "HS256", "typ": "JWT", "kid": stack.issuer.kid}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(_claims(stack)).encode())}"
    key = stack.issuer.public_pem().encode()
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    _assert_unauthorized(_me(stack, f"{signing_input}.{b64(signature)}"), "invalid_token")


@pytest.mark.parametrize("garbage", ["not-a-jwt", "a.b.c", "Bearer"])
def test_malformed_token_is_401(stack: RunningStack, garbage: str) -> None:
    _assert_unauthorized(_me(stack, garbage), "invalid_token")
