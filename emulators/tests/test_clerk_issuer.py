"""The Clerk dev issuer: tokens verify with pyjwt, by JWKS over HTTP and by PEM."""

# Every URL here is the local emulator's own http:// address.
# ruff: noqa: S310

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

from visiona.emulators import clerk
from visiona.emulators._server import running

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def issuer(tmp_path: Path) -> clerk.DevIssuer:
    return clerk.load_or_create_key(tmp_path / "keys")


@pytest.fixture
def base_url(issuer: clerk.DevIssuer) -> Iterator[str]:
    with running(clerk.create_app(issuer)) as url:
        yield url


def verify(token: str, key: Any) -> dict[str, Any]:
    """What the gateway does: RS256 only, issuer checked, the Clerk claims required."""
    return jwt.decode(
        token,
        key,
        algorithms=["RS256"],
        issuer=clerk.DEFAULT_ISSUER,
        options={"require": ["exp", "nbf", "iat", "iss", "sub", "sid", "azp"]},
    )


def test_claims_and_header(issuer: clerk.DevIssuer) -> None:
    before = int(time.time())
    token = issuer.issue("alice", ttl_s=600)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256" and header["kid"] == issuer.kid
    claims = verify(token, issuer.public_pem())
    assert claims["sub"] == "user_alice"
    assert claims["sid"].startswith("sess_") and len(claims["sid"]) > 10
    assert claims["azp"] == "http://localhost:3000"
    assert claims["iat"] >= before and claims["nbf"] == claims["iat"] - 5
    assert claims["exp"] == claims["iat"] + 600
    assert claims["v"] == 2 and claims["fva"] == [0, -1]
    assert "aud" not in claims


def test_options(issuer: clerk.DevIssuer) -> None:
    token = issuer.issue(
        "user_2abc", azp="https://app.example", session_id="sess_x", extra_claims={"o": {"id": "1"}}
    )
    claims = verify(token, issuer.public_pem())
    assert claims["sub"] == "user_2abc" and claims["sid"] == "sess_x"
    assert claims["azp"] == "https://app.example" and claims["o"] == {"id": "1"}
    with pytest.raises(ValueError):
        issuer.issue("bad user")


def test_expired_and_foreign_tokens_fail(issuer: clerk.DevIssuer, tmp_path: Path) -> None:
    with pytest.raises(jwt.ExpiredSignatureError):
        verify(issuer.issue("alice", ttl_s=-60), issuer.public_pem())
    other = clerk.load_or_create_key(tmp_path / "other")
    assert other.kid != issuer.kid
    with pytest.raises(jwt.InvalidSignatureError):
        verify(other.issue("alice"), issuer.public_pem())


def test_key_is_made_once_and_reused(tmp_path: Path) -> None:
    first = clerk.load_or_create_key(tmp_path)
    second = clerk.load_or_create_key(tmp_path)
    assert first.kid == second.kid and first.public_pem() == second.public_pem()
    key_file = tmp_path / clerk.KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert (tmp_path / clerk.PUBLIC_FILE).read_text() == first.public_pem()
    assert verify(second.issue("bob"), first.public_pem())["sub"] == "user_bob"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_issuer_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLERK_DEV_ISSUER", "https://clerk.dev.example")
    monkeypatch.setenv("CLERK_DEV_KEY_DIR", str(tmp_path / "envdir"))
    dev = clerk.load_or_create_key()
    assert dev.issuer == "https://clerk.dev.example"
    assert (tmp_path / "envdir" / clerk.KEY_FILE).exists()
    assert jwt.decode(dev.issue("a"), dev.public_pem(), algorithms=["RS256"])["iss"] == dev.issuer


def test_repo_root_is_found_from_a_subfolder() -> None:
    assert clerk.repo_root(REPO / "emulators" / "src") == REPO


@pytest.mark.parametrize("path", ["/v1/jwks", "/.well-known/jwks.json"])
def test_jwks_over_http(issuer: clerk.DevIssuer, base_url: str, path: str) -> None:
    token = issuer.issue("carol")
    signing_key = jwt.PyJWKClient(base_url + path).get_signing_key_from_jwt(token)
    assert verify(token, signing_key.key)["sub"] == "user_carol"
    jwks = json.loads(urllib.request.urlopen(base_url + path, timeout=5).read())
    assert jwks == issuer.jwks()
    (key,) = jwks["keys"]
    assert {key["kty"], key["alg"], key["use"], key["kid"]} == {"RSA", "RS256", "sig", issuer.kid}


def test_token_endpoint(issuer: clerk.DevIssuer, base_url: str) -> None:
    req = urllib.request.Request(
        base_url + "/_dev/tokens",
        data=json.dumps({"user": "dave", "ttl_s": 120}).encode(),
        headers={"content-type": "application/json"},
    )
    body = json.loads(urllib.request.urlopen(req, timeout=5).read())
    claims = verify(body["token"], issuer.public_pem())
    assert claims["sub"] == "user_dave" and claims["exp"] - claims["iat"] == 120
    bad = urllib.request.Request(
        base_url + "/_dev/tokens",
        data=json.dumps({"user": "no spaces"}).encode(),
        headers={"content-type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(bad, timeout=5)
    assert info.value.code == 422
    health = json.loads(urllib.request.urlopen(base_url + "/healthz", timeout=5).read())
    assert health == {"status": "ok"}


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CLERK_DEV_KEY_DIR": str(tmp_path / "cli")}
    return subprocess.run(
        [sys.executable, "-m", "visiona.emulators.clerk", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=True,
    )


def test_cli_prints_only_a_token(tmp_path: Path) -> None:
    out = _cli(tmp_path, "token", "bob")
    assert out.stdout.endswith("\n") and out.stdout.count("\n") == 1
    token = out.stdout.strip()
    assert token.count(".") == 2 and " " not in token
    dev = clerk.load_or_create_key(tmp_path / "cli")
    assert verify(token, dev.public_pem())["sub"] == "user_bob"
    assert _cli(tmp_path, "public-key").stdout == dev.public_pem()
    assert json.loads(_cli(tmp_path, "jwks").stdout) == dev.jwks()
