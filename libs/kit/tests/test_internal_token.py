"""Internal tokens between services: minted, cached, verified, rotated, refused."""

from __future__ import annotations

import time

import jwt
import pytest
from pydantic import SecretStr

from visiona.kit.errors import Unauthenticated
from visiona.kit.internal_token import (
    AUDIENCE,
    MIN_SECRET_BYTES,
    Minter,
    Verifier,
)

SECRET = "s" * MIN_SECRET_BYTES
OTHER_SECRET = "o" * MIN_SECRET_BYTES


class Clock:
    def __init__(self, now: float = 1_900_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def forged(**overrides: object) -> str:
    """A token signed with the right secret, with ``overrides`` (None removes a claim)."""
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": "gateway",
        "aud": AUDIENCE,
        "sub": "user_a",
        "iat": now,
        "exp": now + 60,
    }
    claims.update(overrides)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, SECRET, "HS256")


def rejected(verifier: Verifier, token: str) -> Unauthenticated:
    with pytest.raises(Unauthenticated) as info:
        verifier.verify(token)
    assert info.value.code == "invalid_internal_token"
    return info.value


def test_a_minted_token_verifies_to_its_user_and_issuer() -> None:
    token = Minter(SECRET, issuer="gateway").token("user_a")
    principal = Verifier(SECRET).verify(token)
    assert (principal.issuer, principal.user_id, principal.system) == ("gateway", "user_a", False)


def test_a_system_token_names_no_user() -> None:
    token = Minter(SECRET, issuer="gateway").token(None)
    assert jwt.decode(token, options={"verify_signature": False})["sys"] is True
    principal = Verifier(SECRET).verify(token)
    assert principal.system and principal.user_id is None


def test_an_expired_token_is_rejected() -> None:
    now = int(time.time())
    assert "expired" in rejected(Verifier(SECRET), forged(iat=now - 200, exp=now - 100)).message


def test_a_verified_token_is_not_trusted_past_its_expiry() -> None:
    clock = Clock()
    token = Minter(SECRET, issuer="gateway", clock=clock).token("user_a")
    verifier = Verifier(SECRET, clock=clock)
    assert verifier.verify(token).user_id == "user_a"
    clock.now += 60 + verifier.leeway_s + 1
    assert "expired" in rejected(verifier, token).message


def test_a_token_from_the_future_is_rejected() -> None:
    now = int(time.time())
    rejected(Verifier(SECRET), forged(iat=now + 30, exp=now + 90))


def test_a_token_signed_with_another_secret_is_rejected() -> None:
    token = Minter(OTHER_SECRET, issuer="intruder").token("user_a")
    assert "signature" in rejected(Verifier(SECRET), token).message


def test_the_previous_secret_is_accepted_during_a_rotation() -> None:
    old_token = Minter(OTHER_SECRET, issuer="billing").token("user_a")
    new_token = Minter(SECRET, issuer="gateway").token("user_b")
    rotating = Verifier(SECRET, previous_secret=SecretStr(OTHER_SECRET))
    assert rotating.verify(old_token).user_id == "user_a"
    assert rotating.verify(new_token).user_id == "user_b"
    # Once the rotation is over, tokens of the old secret stop working.
    rejected(Verifier(SECRET), old_token)


def test_an_empty_previous_secret_means_no_rotation() -> None:
    token = Minter(OTHER_SECRET, issuer="billing").token("user_a")
    rejected(Verifier(SECRET, previous_secret=SecretStr("")), token)


@pytest.mark.parametrize(
    "overrides",
    [
        {"aud": "someone-else"},
        {"aud": None},
        {"iss": None},
        {"sub": None},
        {"sys": True},  # both a user and the system
        {"sub": ""},
        {"exp": int(time.time()) + 3600},  # longer than any minted token lives
    ],
    ids=[
        "wrong-audience",
        "no-audience",
        "no-issuer",
        "no-subject",
        "user-and-system",
        "empty-sub",
        "too-long",
    ],
)
def test_tokens_not_shaped_like_ours_are_rejected(overrides: dict[str, object]) -> None:
    rejected(Verifier(SECRET), forged(**overrides))


def test_other_algorithms_are_rejected() -> None:
    now = int(time.time())
    claims = {"iss": "x", "aud": AUDIENCE, "sub": "user_a", "iat": now, "exp": now + 60}
    unsigned = jwt.encode(claims, None, "none")
    rejected(Verifier(SECRET), unsigned)


@pytest.mark.parametrize("token", [None, "", "not-a-jwt"])
def test_a_missing_or_malformed_token_is_rejected(token: str | None) -> None:
    with pytest.raises(Unauthenticated) as info:
        Verifier(SECRET).verify(token)
    assert info.value.code == "invalid_internal_token"


def test_the_minter_reuses_a_token_until_half_its_life_is_spent() -> None:
    clock = Clock()
    minter = Minter(SECRET, issuer="gateway", lifetime_s=60, clock=clock)
    first = minter.token("user_a")
    assert minter.token("user_a") == first
    assert minter.token("user_b") != first
    clock.now += 29
    assert minter.token("user_a") == first
    clock.now += 2
    second = minter.token("user_a")
    assert second != first
    claims = jwt.decode(second, options={"verify_signature": False})
    assert claims["iat"] == int(clock.now) and claims["exp"] == int(clock.now) + 60


@pytest.mark.parametrize("secret", ["", "short-secret", SecretStr("x" * (MIN_SECRET_BYTES - 1))])
def test_a_missing_or_short_secret_refuses_to_start(secret: str | SecretStr) -> None:
    with pytest.raises(ValueError, match="TRAINING_INTERNAL_TOKEN_SECRET"):
        Minter(secret, issuer="training", setting="TRAINING_INTERNAL_TOKEN_SECRET")
    with pytest.raises(ValueError, match="at least 32"):
        Verifier(secret)


def test_settings_name_the_variable_to_set() -> None:
    from pydantic_settings import SettingsConfigDict

    from visiona.kit.settings import ServiceSettings

    class TrainingLike(ServiceSettings):
        model_config = SettingsConfigDict(env_prefix="TRAINING_", extra="ignore", frozen=True)

    with pytest.raises(ValueError, match="TRAINING_INTERNAL_TOKEN_SECRET"):
        Verifier.from_settings(TrainingLike())
    settings = TrainingLike(service_name="training", internal_token_secret=SecretStr(SECRET))
    token = Minter.from_settings(settings).token("user_a")
    assert Verifier.from_settings(settings).verify(token).issuer == "training"
