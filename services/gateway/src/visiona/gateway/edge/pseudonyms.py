"""Keyed hashes that stand in for a user id or a client IP where the gateway must not keep
them: rate-limit buckets, the audit log's ``ip_hash``, erasure receipts.

HMAC-SHA256 under ``GATEWAY_PSEUDONYM_KEY`` with a purpose prefix, so the pseudonym of a user
in one place never matches the same user in another, and nobody without the key can go from
a pseudonym back to a user id or an IP (an IPv4 address is too small a space to hash without
a key). Every gateway instance holds the same key, so they agree on each pseudonym.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

from visiona.gateway.config import GatewaySettings

MIN_KEY_BYTES = 32


class Pseudonyms:
    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> Pseudonyms:
        """Raises ``ValueError`` (the gateway does not start) without a usable key."""
        key = settings.pseudonym_key.get_secret_value().encode()
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(
                f"GATEWAY_PSEUDONYM_KEY must be set to at least {MIN_KEY_BYTES} random bytes, "
                "the same in every gateway instance, e.g. "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )
        return cls(key)

    def of(self, purpose: str, value: str) -> str:
        """The pseudonym of ``value`` for ``purpose`` (hex; ``purpose`` separates domains)."""
        message = purpose.encode() + b":" + value.encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def ip(self, purpose: str, host: str | None) -> str:
        return self.of(purpose, network_of(host))


def network_of(host: str | None) -> str:
    """What one client is, as far as an address says: an IPv4 address, or the /64 of an IPv6
    one (a single subscriber is given a whole /64, so per-address limits would not hold)."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)
