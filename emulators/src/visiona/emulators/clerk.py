"""Clerk dev issuer: signs Clerk-shaped session JWTs so the gateway verifies exactly as in prod.

The RS256 key lives as PEM in ``<repo>/.dev/clerk/signing-key.pem`` (``$VISIONA_DEV_DIR/clerk``
when that names the local stack's folder, or ``$CLERK_DEV_KEY_DIR``),
made on first use with 0600 permissions and reused afterwards; ``public.pem`` sits next to it
for networkless verification (``CLERK_JWT_KEY``). The ``kid`` is the RFC 7638 thumbprint of
the public key, so it is stable for as long as the key file is.

CLI: ``python -m visiona.emulators.clerk token alice`` prints only the token;
``... public-key`` prints the PEM; ``... jwks`` prints the JWKS; ``... serve`` runs the app
(``GET /v1/jwks``, ``GET /.well-known/jwks.json``, ``POST /_dev/tokens``, ``GET /healthz``,
and the Backend API's users with Svix-signed webhooks: visiona.emulators.clerk_users).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import secrets
import string
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from fastapi import FastAPI

    from visiona.emulators.clerk_users import ClerkUsers

DEFAULT_PORT = 8104
DEFAULT_ISSUER = f"http://127.0.0.1:{DEFAULT_PORT}"
DEFAULT_AZP = "http://localhost:3000"
# The Backend API secret key the emulator accepts (a dev value, like Clerk's sk_test_ keys).
DEFAULT_SECRET_KEY = "sk_test_visiona_local"  # noqa: S105
KEY_FILE = "signing-key.pem"
PUBLIC_FILE = "public.pem"
USER_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ALNUM = string.ascii_letters + string.digits


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_uint(n: int) -> str:
    return _b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))


def repo_root(start: Path | None = None) -> Path:
    """The uv workspace root: the nearest ancestor whose pyproject.toml has [tool.uv.workspace].

    Looks upward from ``start`` (default: the working directory), then from this file.
    """
    for origin in (start or Path.cwd(), Path(__file__).resolve()):
        for folder in (origin, *origin.parents):
            pyproject = folder / "pyproject.toml"
            if pyproject.is_file() and "[tool.uv.workspace]" in pyproject.read_text():
                return folder
    raise RuntimeError("workspace root not found; set CLERK_DEV_KEY_DIR")


def dev_dir() -> Path:
    """Where the local stack keeps its state: ``$VISIONA_DEV_DIR``, else ``<repo>/.dev``."""
    env = os.environ.get("VISIONA_DEV_DIR")
    return Path(env) if env else repo_root() / ".dev"


def default_key_dir() -> Path:
    """``$CLERK_DEV_KEY_DIR``, else ``clerk`` in the local stack's folder (:func:`dev_dir`)."""
    env = os.environ.get("CLERK_DEV_KEY_DIR")
    return Path(env) if env else dev_dir() / "clerk"


@dataclass(frozen=True)
class DevIssuer:
    """A signing key plus the issuer URL it signs for."""

    private_key: rsa.RSAPrivateKey
    issuer: str = DEFAULT_ISSUER

    @property
    def kid(self) -> str:
        """RFC 7638 JWK thumbprint (SHA-256, base64url) of the public key."""
        nums = self.private_key.public_key().public_numbers()
        canonical = json.dumps(
            {"e": _b64url_uint(nums.e), "kty": "RSA", "n": _b64url_uint(nums.n)},
            separators=(",", ":"),
            sort_keys=True,
        )
        return _b64url(hashlib.sha256(canonical.encode()).digest())

    def public_pem(self) -> str:
        """The public key as SubjectPublicKeyInfo PEM (what ``CLERK_JWT_KEY`` holds)."""
        return (
            self.private_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The JWKS document, shaped like Clerk's ``GET /v1/jwks``."""
        nums = self.private_key.public_key().public_numbers()
        key = {
            "use": "sig",
            "kty": "RSA",
            "kid": self.kid,
            "alg": "RS256",
            "n": _b64url_uint(nums.n),
            "e": _b64url_uint(nums.e),
        }
        return {"keys": [key]}

    def issue(
        self,
        user: str,
        *,
        azp: str = DEFAULT_AZP,
        ttl_s: int = 3600,
        session_id: str | None = None,
        extra_claims: dict[str, Any] | None = None,
        role: str | None = None,
    ) -> str:
        """Sign a Clerk v2 session token for ``user`` (``sub`` gets a ``user_`` prefix if absent).

        ``role`` puts ``{"metadata": {"role": role}}`` in the claims: what a Clerk instance
        whose session token template carries the user's public metadata
        (``{"metadata": "{{user.public_metadata}}"}``) signs for a user whose public metadata
        has that role (the gateway's operators, GATEWAY_OPERATOR_ROLE).

        A negative ``ttl_s`` gives an already expired token, which tests need.
        """
        if not USER_RE.fullmatch(user):
            raise ValueError("user must be 1-64 characters of [A-Za-z0-9_-]")
        now = int(time.time())
        claims: dict[str, Any] = {
            "azp": azp,
            "exp": now + ttl_s,
            "fva": [0, -1],
            "iat": now,
            "iss": self.issuer,
            # Clerk back-dates nbf a few seconds to absorb clock skew between its servers.
            "nbf": now - 5,
            "sid": session_id or "sess_" + "".join(secrets.choice(_ALNUM) for _ in range(27)),
            "sub": user if user.startswith("user_") else f"user_{user}",
            "v": 2,
        }
        if role is not None:
            claims["metadata"] = {"role": role}
        claims.update(extra_claims or {})
        return jwt.encode(claims, self.private_key, algorithm="RS256", headers={"kid": self.kid})


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Write ``path`` atomically, never replacing an existing file (first writer wins)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        # A hard link fails if the target exists, so two processes starting at once (make up
        # and a test run) cannot end up signing with different keys.
        path.hardlink_to(tmp)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)


def default_issuer() -> str:
    """``$CLERK_DEV_ISSUER``, else the local issuer on ``$CLERK_ISSUER_PORT`` (8104)."""
    explicit = os.environ.get("CLERK_DEV_ISSUER")
    if explicit:
        return explicit
    port = os.environ.get("CLERK_ISSUER_PORT", "").strip()
    return f"http://127.0.0.1:{port}" if port else DEFAULT_ISSUER


def load_or_create_key(
    key_dir: Path | str | None = None, *, issuer: str | None = None
) -> DevIssuer:
    """Load the dev signing key from ``key_dir`` (default :func:`default_key_dir`), making it
    on first use. ``issuer`` defaults to :func:`default_issuer`."""
    folder = Path(key_dir) if key_dir is not None else default_key_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / KEY_FILE
    if not path.exists():
        new = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = new.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_new(path, pem, 0o600)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{path} does not hold an RSA private key")
    dev = DevIssuer(key, issuer or default_issuer())
    public = folder / PUBLIC_FILE
    if not public.exists() or public.read_text() != dev.public_pem():
        _write_new(public, dev.public_pem().encode(), 0o644)
    return dev


class TokenRequest(BaseModel):
    """Body of ``POST /_dev/tokens``."""

    user: str = Field(pattern=USER_RE.pattern)
    ttl_s: int = 3600
    azp: str = DEFAULT_AZP
    session_id: str | None = None
    extra_claims: dict[str, Any] | None = None
    # The ``metadata.role`` claim (DevIssuer.issue): e.g. the gateway's operator role.
    role: str | None = Field(default=None, max_length=64)


def users_from_env(state_dir: Path | None = None, fresh: bool | None = None) -> ClerkUsers:
    """The Backend API's users; webhooks go to ``CLERK_WEBHOOK_URL`` signed with
    ``CLERK_WEBHOOK_SECRET`` when both are set, retried after ``CLERK_WEBHOOK_RETRY_DELAYS_S``
    (comma-separated seconds). Kept across restarts in ``VISIONA_EMULATOR_STATE_DIR``
    (``VISIONA_EMULATOR_FRESH=1``: start empty)."""
    from visiona.emulators._delivery import retry_delays_from_env
    from visiona.emulators._state import StateFile, fresh_from_env, state_dir_from_env, state_path
    from visiona.emulators.clerk_users import DEFAULT_RETRY_DELAYS_S, ClerkUsers

    return ClerkUsers(
        state=StateFile(
            state_path("clerk", state_dir or state_dir_from_env()),
            fresh=fresh_from_env() if fresh is None else fresh,
        ),
        secret_key=os.environ.get("CLERK_SECRET_KEY", DEFAULT_SECRET_KEY),
        webhook_url=os.environ.get("CLERK_WEBHOOK_URL") or None,
        webhook_secret=os.environ.get("CLERK_WEBHOOK_SECRET") or None,
        retry_delays_s=list(
            retry_delays_from_env("CLERK_WEBHOOK_RETRY_DELAYS_S", DEFAULT_RETRY_DELAYS_S)
        ),
    )


def create_app(issuer: DevIssuer | None = None, users: ClerkUsers | None = None) -> FastAPI:
    """The issuer's HTTP face: JWKS (Backend API and Frontend API paths), a token minter, and
    the Backend API's users with their webhooks (visiona.emulators.clerk_users)."""
    # Imported here so `make token` does not pay for FastAPI's import time.
    from fastapi import HTTPException

    from visiona.emulators import _server, clerk_users

    dev = issuer or load_or_create_key()
    app = _server.new_app("Clerk dev issuer")
    clerk_users.install(app, users or users_from_env())

    @app.get("/v1/jwks")
    @app.get("/.well-known/jwks.json")
    async def jwks() -> dict[str, list[dict[str, str]]]:
        return dev.jwks()

    @app.get("/.well-known/openid-configuration")
    async def discovery() -> dict[str, Any]:
        return {"issuer": dev.issuer, "jwks_uri": f"{dev.issuer}/.well-known/jwks.json"}

    @app.post("/_dev/tokens")
    async def token(req: TokenRequest) -> dict[str, str]:
        try:
            return {
                "token": dev.issue(
                    req.user,
                    azp=req.azp,
                    ttl_s=req.ttl_s,
                    session_id=req.session_id,
                    extra_claims=req.extra_claims,
                    role=req.role,
                )
            }
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from exc

    return app


def serve(
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    key_dir: Path | None = None,
    users: ClerkUsers | None = None,
) -> None:
    """Run the dev issuer in the foreground."""
    from visiona.emulators import _server

    _server.serve(create_app(load_or_create_key(key_dir), users), host, port)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m visiona.emulators.clerk {token USER | public-key | jwks | serve}``."""
    parser = argparse.ArgumentParser(prog="python -m visiona.emulators.clerk")
    parser.add_argument("--key-dir", type=Path, default=None, help="default: $CLERK_DEV_KEY_DIR")
    sub = parser.add_subparsers(dest="cmd", required=True)
    tok = sub.add_parser("token", help="print a session token for USER")
    tok.add_argument("user")
    tok.add_argument("--ttl-s", type=int, default=3600)
    tok.add_argument("--azp", default=DEFAULT_AZP)
    tok.add_argument("--role", default=None, help="the metadata.role claim (e.g. operator)")
    sub.add_parser("public-key", help="print the public key PEM")
    sub.add_parser("jwks", help="print the JWKS")
    srv = sub.add_parser("serve", help="run the HTTP issuer")
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument(
        "--port", type=int, default=int(os.environ.get("CLERK_ISSUER_PORT", DEFAULT_PORT))
    )
    args = parser.parse_args(argv)

    if args.cmd == "serve":
        serve(args.host, args.port, args.key_dir)
        return 0
    dev = load_or_create_key(args.key_dir)
    if args.cmd == "token":
        try:
            print(dev.issue(args.user, azp=args.azp, ttl_s=args.ttl_s, role=args.role))
        except ValueError as exc:
            parser.error(str(exc))
    elif args.cmd == "public-key":
        sys.stdout.write(dev.public_pem())
    else:
        print(json.dumps(dev.jwks(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
