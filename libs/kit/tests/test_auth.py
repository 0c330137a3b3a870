"""Clerk session-token verification with a PEM key (networkless)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from visiona.kit.auth import TokenVerifier
from visiona.kit.errors import Unauthenticated

ISSUER = "https://clerk.example.test"
AZP = "https://app.example.test"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PEM = (
    KEY.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)


def token(**overrides: object) -> str:
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": "user_1",
        "sid": "sess_1",
        "azp": AZP,
        "iss": ISSUER,
        "iat": now,
        "nbf": now - 5,
        "exp": now + 60,
    }
    claims.update(overrides)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, KEY, algorithm="RS256")


@pytest.fixture
def verifier() -> TokenVerifier:
    return TokenVerifier(issuer=ISSUER, authorized_parties=[AZP], pem_public_key=PEM, leeway_s=5)


async def test_valid_token_gives_the_principal(verifier: TokenVerifier) -> None:
    principal = await verifier.verify(token())
    assert (principal.user_id, principal.session_id) == ("user_1", "sess_1")


async def test_clock_skew_within_leeway_is_tolerated(verifier: TokenVerifier) -> None:
    now = int(time.time())
    await verifier.verify(token(nbf=now + 3, iat=now + 3))


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        # Times relative to when the test runs (not to collection, which can be minutes
        # earlier in a full run).
        (lambda now: {"exp": now - 30}, "token_expired"),
        (lambda now: {"nbf": now + 60}, "invalid_token"),
        (lambda now: {"iss": "https://other.test"}, "invalid_token"),
        (lambda now: {"azp": "https://evil.test"}, "invalid_token"),
        (lambda now: {"sub": None}, "invalid_token"),
        (lambda now: {"exp": None}, "invalid_token"),
    ],
    ids=["expired", "not-yet-valid", "issuer", "azp", "no-sub", "no-exp"],
)
async def test_bad_claims_are_refused(
    verifier: TokenVerifier, overrides: Callable[[int], dict[str, object]], code: str
) -> None:
    with pytest.raises(Unauthenticated) as info:
        await verifier.verify(token(**overrides(int(time.time()))))
    assert info.value.code == code


async def test_an_expired_token_says_how_to_get_a_new_one() -> None:
    expired = token(exp=int(time.time()) - 30)
    default = TokenVerifier(issuer=ISSUER, authorized_parties=[AZP], pem_public_key=PEM)
    with pytest.raises(Unauthenticated) as info:
        await default.verify(expired)
    assert info.value.code == "token_expired"
    assert "sign in again" in info.value.message and "getToken()" in info.value.message
    local = TokenVerifier(
        issuer=ISSUER, authorized_parties=[AZP], pem_public_key=PEM, renewal_hint="run make token"
    )
    with pytest.raises(Unauthenticated) as info:
        await local.verify(expired)
    assert info.value.message == "the session token has expired: run make token"


async def test_a_verifier_needs_a_key() -> None:
    with pytest.raises(ValueError):
        TokenVerifier(issuer=ISSUER, authorized_parties=[AZP])


async def test_a_remembered_token_still_expires() -> None:
    strict = TokenVerifier(issuer=ISSUER, authorized_parties=[AZP], pem_public_key=PEM, leeway_s=0)
    exp = int(time.time()) + 2
    short = token(exp=exp)
    await strict.verify(short)
    await asyncio.sleep(exp - time.time() + 0.2)
    with pytest.raises(Unauthenticated) as info:
        await strict.verify(short)
    assert info.value.code == "token_expired"


async def test_remembered_tokens_are_bounded(
    verifier: TokenVerifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("visiona.kit.auth.VERIFIED_MAX", 2)
    tokens = [token(sid=f"sess_{i}") for i in range(3)]
    for t in tokens:
        await verifier.verify(t)
    assert list(verifier._verified) == tokens[1:]


async def test_a_refused_token_is_never_remembered(verifier: TokenVerifier) -> None:
    bad = token(iss="https://other.test")
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            await verifier.verify(bad)
    assert bad not in verifier._verified
