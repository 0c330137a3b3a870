"""Clerk session-token verification (networkless with a PEM key, or through JWKS).

Clerk session JWTs are RS256 with a ``kid``; claims ``sub``, ``sid``, ``azp``, ``iss``, ``exp``,
``nbf``, ``iat`` and no ``aud``. We check the signature with the instance key, the algorithm
(RS256 only, so ``alg: none`` and HMAC confusion fail), the issuer, the authorized party
(``azp``) against an allow-list, and the time claims with a small leeway for clock skew.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization

from visiona.kit.errors import Unauthenticated

ALGORITHMS = ["RS256"]
VERIFIED_TTL_S = 30.0
VERIFIED_MAX = 10_000
# What an expired token's refusal tells its holder to do (Clerk's session tokens last a
# minute; its frontend SDK keeps refreshing them while the user is signed in).
RENEWAL_HINT = (
    "sign in again, or get a fresh session token from Clerk (a signed-in frontend's "
    "`session.getToken()`) and send the request again"
)


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    user_id: str
    session_id: str | None
    claims: dict[str, Any]


class TokenVerifier:
    def __init__(
        self,
        *,
        issuer: str,
        authorized_parties: list[str],
        pem_public_key: str | None = None,
        jwks_url: str | None = None,
        leeway_s: float = 5.0,
        jwks_cache_s: int = 300,
        renewal_hint: str = RENEWAL_HINT,
    ) -> None:
        if not (pem_public_key or jwks_url):
            raise ValueError("a PEM public key or a JWKS URL is required")
        self.issuer = issuer
        self.renewal_hint = renewal_hint
        self.authorized_parties = set(authorized_parties)
        self.leeway_s = leeway_s
        # Parsed once: pyjwt would parse a PEM string again on every request.
        self._key = (
            serialization.load_pem_public_key(pem_public_key.encode()) if pem_public_key else None
        )
        self._jwks = (
            jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=jwks_cache_s, timeout=5)
            if jwks_url and not pem_public_key
            else None
        )
        # Verified keys by kid, so the hot path never leaves the event loop.
        # (A revoked key stops working when its entry expires, like PyJWKClient's own cache.)
        self._keys_by_kid: dict[str, tuple[Any, float]] = {}
        self._jwks_cache_s = jwks_cache_s
        # Tokens already verified, for a few seconds: a browser sends the same session token
        # with every request until it refreshes it (Clerk: every minute). An entry never
        # outlives the token's own exp.
        self._verified: OrderedDict[str, tuple[Principal, float, float]] = OrderedDict()

    async def ready(self) -> None:
        """Raise unless a verification key is at hand (for readiness checks)."""
        if self._jwks is not None:
            await asyncio.to_thread(self._jwks.get_signing_keys)

    async def verify(self, token: str) -> Principal:
        """Verify a session token; raises :class:`Unauthenticated` with a stable code."""
        hit = self._verified.get(token)
        if hit is not None:
            principal, expires_at, cached_until = hit
            if time.monotonic() < cached_until and time.time() < expires_at + self.leeway_s:
                return principal
            del self._verified[token]
        principal = await self._verify(token)
        exp = principal.claims.get("exp")
        if isinstance(exp, int | float):
            self._verified[token] = (principal, float(exp), time.monotonic() + VERIFIED_TTL_S)
            if len(self._verified) > VERIFIED_MAX:
                self._verified.popitem(last=False)
        return principal

    async def _verify(self, token: str) -> Principal:
        if self._jwks is None:
            return self._decode(token, self._key)
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated("the session token is malformed", code="invalid_token") from exc
        cached = self._keys_by_kid.get(kid) if isinstance(kid, str) else None
        key = cached[0] if cached is not None and cached[1] > time.monotonic() else None
        if key is None:
            try:
                # A JWKS fetch blocks and is rare (unknown kid, key rotation): off the loop.
                signing_key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
            except jwt.PyJWKClientError as exc:
                raise Unauthenticated(
                    "the session token's key is unknown", code="invalid_token"
                ) from exc
            except jwt.InvalidTokenError as exc:
                raise Unauthenticated(
                    "the session token is malformed", code="invalid_token"
                ) from exc
            key = signing_key.key
            if isinstance(kid, str):
                self._keys_by_kid[kid] = (key, time.monotonic() + self._jwks_cache_s)
        return self._decode(token, key)

    def _decode(self, token: str, key: Any) -> Principal:
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": ["exp", "nbf", "iat", "iss", "sub"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated(
                f"the session token has expired: {self.renewal_hint}", code="token_expired"
            ) from exc
        except jwt.ImmatureSignatureError as exc:
            raise Unauthenticated(
                "the session token is not valid yet", code="invalid_token"
            ) from exc
        except jwt.InvalidIssuerError as exc:
            raise Unauthenticated(
                "the session token has the wrong issuer", code="invalid_token"
            ) from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated("the session token is invalid", code="invalid_token") from exc
        azp = claims.get("azp")
        if azp is not None and azp not in self.authorized_parties:
            raise Unauthenticated("the session token's origin is not allowed", code="invalid_token")
        sub = claims["sub"]
        if not isinstance(sub, str) or not sub:
            raise Unauthenticated("the session token has no subject", code="invalid_token")
        sid = claims.get("sid")
        return Principal(
            user_id=sub, session_id=sid if isinstance(sid, str) else None, claims=claims
        )
