"""Short-lived signed tokens that say whom a gRPC call between our services acts for.

A back service believes only a verified token, never a bare header: anything that can reach
a gRPC port but does not hold the shared secret cannot claim to be a user. The token is an
HS256 JWT: ``iss`` the minting service, ``aud`` :data:`AUDIENCE`, ``iat``/``exp`` a minute
apart, and either ``sub`` (the user) or ``"sys": true`` (the system principal, for webhook
forwarding and other work done for no user).

Who may mint what: every holder of the secret (the gateway and the back services) may mint
a token for any user or for the system; the gateway mints for the user it authenticated (or
the system, for webhooks), and a back service mints with its own name as ``iss`` only for the
user whose request it is serving or, from background work, for the owner of the row it acts
on — the secret separates our processes from everything else, not our services from each
other.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import jwt
from pydantic import SecretStr

from visiona.kit.errors import Unauthenticated

AUDIENCE = "visiona-internal"
ALGORITHM = "HS256"
MIN_SECRET_BYTES = 32
DEFAULT_LIFETIME_S = 60
DEFAULT_LEEWAY_S = 5.0
# Tokens minted by our own code live DEFAULT_LIFETIME_S; one that claims to live much longer
# was not minted by a Minter (a leaked token must stop working soon).
MAX_LIFETIME_S = 300
ERROR_CODE = "invalid_internal_token"
_CACHE_MAX = 10_000


class InternalTokenSettings(Protocol):
    """What :meth:`Minter.from_settings` and :meth:`Verifier.from_settings` read."""

    @property
    def service_name(self) -> str: ...

    @property
    def internal_token_secret(self) -> SecretStr: ...

    @property
    def internal_token_previous_secret(self) -> SecretStr | None: ...


def secret_bytes(secret: SecretStr | str | None, setting: str) -> bytes:
    """The secret as bytes; raises ``ValueError`` naming ``setting`` when it is missing or
    too short to be an HMAC key worth the name."""
    value = secret.get_secret_value() if isinstance(secret, SecretStr) else (secret or "")
    raw = value.encode()
    if not raw:
        raise ValueError(
            f"{setting} is not set: every service and the gateway need the same secret "
            f"(at least {MIN_SECRET_BYTES} bytes) to sign and verify internal calls"
        )
    if len(raw) < MIN_SECRET_BYTES:
        raise ValueError(
            f"{setting} is too short ({len(raw)} bytes): use at least {MIN_SECRET_BYTES} "
            "random bytes, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )
    return raw


def _setting_name(settings: object, field: str) -> str:
    config = getattr(settings, "model_config", {})
    prefix = config.get("env_prefix", "") if isinstance(config, dict) else ""
    return f"{prefix}{field}".upper()


@dataclass(frozen=True)
class InternalPrincipal:
    """The verified caller of an internal call: a user, or the system (``user_id`` None)."""

    issuer: str
    user_id: str | None
    expires_at: float

    @property
    def system(self) -> bool:
        return self.user_id is None


class Minter:
    """Mints tokens as ``issuer``; one token per subject is reused until half its life is
    spent, so a call usually costs a dictionary lookup rather than an HMAC."""

    def __init__(
        self,
        secret: SecretStr | str,
        *,
        issuer: str,
        lifetime_s: int = DEFAULT_LIFETIME_S,
        clock: Callable[[], float] = time.time,
        setting: str = "internal token secret",
    ) -> None:
        if lifetime_s <= 0 or lifetime_s > MAX_LIFETIME_S:
            raise ValueError(f"lifetime_s must be in (0, {MAX_LIFETIME_S}]")
        self._key = secret_bytes(secret, setting)
        self.issuer = issuer
        self.lifetime_s = lifetime_s
        self._clock = clock
        # subject (None: the system) -> (token, wall time after which a fresh one is minted)
        self._cache: OrderedDict[str | None, tuple[str, float]] = OrderedDict()

    @classmethod
    def from_settings(cls, settings: InternalTokenSettings) -> Minter:
        return cls(
            settings.internal_token_secret,
            issuer=settings.service_name,
            setting=_setting_name(settings, "internal_token_secret"),
        )

    def token(self, user_id: str | None) -> str:
        """A token for ``user_id``, or for the system principal when it is None."""
        subject = user_id or None
        now = self._clock()
        hit = self._cache.get(subject)
        if hit is not None and now < hit[1]:
            return hit[0]
        issued_at = int(now)
        claims: dict[str, object] = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "iat": issued_at,
            "exp": issued_at + self.lifetime_s,
        }
        if subject is None:
            claims["sys"] = True
        else:
            claims["sub"] = subject
        token = jwt.encode(claims, self._key, algorithm=ALGORITHM)
        self._cache[subject] = (token, issued_at + self.lifetime_s / 2)
        self._cache.move_to_end(subject)
        if len(self._cache) > _CACHE_MAX:
            self._cache.popitem(last=False)
        return token


class Verifier:
    """Verifies internal tokens against the current secret and, during a rotation, the
    previous one. A verified token is remembered until it expires, so the same token on the
    next call costs a lookup, not an HMAC."""

    def __init__(
        self,
        secret: SecretStr | str,
        previous_secret: SecretStr | str | None = None,
        *,
        leeway_s: float = DEFAULT_LEEWAY_S,
        max_cached: int = _CACHE_MAX,
        clock: Callable[[], float] = time.time,
        setting: str = "internal token secret",
    ) -> None:
        self._keys = [secret_bytes(secret, setting)]
        previous = (
            previous_secret.get_secret_value()
            if isinstance(previous_secret, SecretStr)
            else previous_secret
        )
        # Empty counts as unset: compose and k8s pass an empty value when not rotating.
        if previous:
            self._keys.append(secret_bytes(previous, f"previous {setting}"))
        self.leeway_s = leeway_s
        self._max_cached = max_cached
        self._clock = clock
        self._verified: OrderedDict[str, InternalPrincipal] = OrderedDict()

    @classmethod
    def from_settings(cls, settings: InternalTokenSettings) -> Verifier:
        return cls(
            settings.internal_token_secret,
            settings.internal_token_previous_secret,
            setting=_setting_name(settings, "internal_token_secret"),
        )

    def verify(self, token: str | None) -> InternalPrincipal:
        """The principal of ``token``; raises :class:`Unauthenticated` (code
        ``invalid_internal_token``) when it is missing, forged, expired or not ours."""
        if not token:
            raise Unauthenticated("this call carries no internal token", code=ERROR_CODE)
        hit = self._verified.get(token)
        if hit is not None:
            if self._clock() <= hit.expires_at + self.leeway_s:
                return hit
            del self._verified[token]
        principal = self._decode(token, self._clock())
        self._verified[token] = principal
        if len(self._verified) > self._max_cached:
            self._verified.popitem(last=False)
        return principal

    def _decode(self, token: str, now: float) -> InternalPrincipal:
        claims: dict[str, object] | None = None
        for key in self._keys:
            try:
                # Times are checked below against this verifier's clock, the one its cache
                # of verified tokens also uses.
                claims = jwt.decode(
                    token,
                    key,
                    algorithms=[ALGORITHM],
                    audience=AUDIENCE,
                    options={
                        "require": ["iss", "aud", "iat", "exp"],
                        "verify_exp": False,
                        "verify_iat": False,
                        "verify_nbf": False,
                    },
                )
                break
            except jwt.InvalidSignatureError:
                continue
            except jwt.InvalidTokenError as exc:
                raise Unauthenticated("the internal token is invalid", code=ERROR_CODE) from exc
        if claims is None:
            raise Unauthenticated("the internal token's signature is invalid", code=ERROR_CODE)
        return _principal(claims, now, self.leeway_s)


def _principal(claims: dict[str, object], now: float, leeway_s: float) -> InternalPrincipal:
    issuer, sub, system = claims.get("iss"), claims.get("sub"), claims.get("sys")
    issued_at, expires_at = claims["iat"], claims["exp"]
    if not isinstance(issuer, str) or not issuer:
        raise Unauthenticated("the internal token names no issuer", code=ERROR_CODE)
    if not isinstance(issued_at, int | float) or not isinstance(expires_at, int | float):
        raise Unauthenticated("the internal token's times are invalid", code=ERROR_CODE)
    if now > expires_at + leeway_s:
        raise Unauthenticated("the internal token has expired", code=ERROR_CODE)
    if issued_at > now + leeway_s:
        raise Unauthenticated("the internal token is not valid yet", code=ERROR_CODE)
    if expires_at - issued_at > MAX_LIFETIME_S:
        raise Unauthenticated("the internal token lives too long", code=ERROR_CODE)
    if system is True and sub is None:
        return InternalPrincipal(issuer, None, float(expires_at))
    if system in (None, False) and isinstance(sub, str) and sub:
        return InternalPrincipal(issuer, sub, float(expires_at))
    raise Unauthenticated(
        "the internal token must name either a user or the system", code=ERROR_CODE
    )
