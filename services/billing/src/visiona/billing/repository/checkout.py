"""Checkout Sessions billing opened at Stripe (``checkout_sessions``, user-owned): what each
sells, and the caller's idempotency key that opened it (ADR 0009)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from visiona.billing.domain.checkout import CheckoutItem, RecoveredSession, SoldItem
from visiona.kit.repository import Repository


@dataclass(frozen=True)
class KeyedSession:
    """The session an idempotency key opened, with the fingerprint of that request."""

    id: str
    request_fingerprint: bytes
    url: str
    expires_at: datetime | None


class CheckoutRepository(Repository):
    async def opened_with(self, user_id: str, idempotency_key: str) -> KeyedSession | None:
        row = await self._first(
            "SELECT id, request_fingerprint, url, expires_at FROM checkout_sessions "
            "WHERE user_id = :u AND idempotency_key = :k",
            {"u": user_id, "k": idempotency_key},
        )
        return None if row is None else KeyedSession(**row._mapping)

    async def record(
        self,
        *,
        session_id: str,
        user_id: str,
        item: CheckoutItem,
        currency: str,
        idempotency_key: str | None,
        request_fingerprint: bytes | None,
        url: str,
        expires_at: datetime | None,
    ) -> bool:
        """Record a session just opened; False when a twin with the same key recorded it."""
        recorded = await self._first(
            "INSERT INTO checkout_sessions (id, user_id, kind, item_id, credits, amount, "
            "currency, idempotency_key, request_fingerprint, url, expires_at) VALUES (:id, :u, "
            ":kind, :item, :credits, :amount, :currency, :key, :fp, :url, :expires) "
            "ON CONFLICT DO NOTHING RETURNING id",
            {
                "id": session_id,
                "u": user_id,
                "kind": item.kind,
                "item": item.item_id,
                "credits": item.credits,
                "amount": item.amount,
                "currency": currency,
                "key": idempotency_key,
                "fp": request_fingerprint,
                "url": url,
                "expires": expires_at,
            },
        )
        return recorded is not None

    async def record_recovered(
        self, session_id: str, user_id: str, recovered: RecoveredSession
    ) -> None:
        await self._execute(
            "INSERT INTO checkout_sessions (id, user_id, kind, item_id, credits, amount, "
            "currency) VALUES (:id, :u, :kind, :item, :credits, :amount, :currency) "
            "ON CONFLICT (id) DO NOTHING",
            {
                "id": session_id,
                "u": user_id,
                "kind": recovered.kind,
                "item": recovered.item_id,
                "credits": recovered.credits,
                "amount": recovered.amount,
                "currency": recovered.currency,
            },
        )

    async def sold(self, session_id: str, user_id: str) -> SoldItem | None:
        """What the user's session sells, if billing recorded it."""
        row = await self._first(
            "SELECT kind, item_id, credits FROM checkout_sessions WHERE id = :id AND user_id = :u",
            {"id": session_id, "u": user_id},
        )
        return None if row is None else SoldItem(row.kind, row.item_id, row.credits)

    async def complete(self, session_id: str, status: str) -> None:
        """``complete`` (a plan's: its credits come with the invoices) or ``paid`` (a pack's)."""
        await self._execute(
            "UPDATE checkout_sessions SET status = :status, "
            "completed_at = COALESCE(completed_at, now()) WHERE id = :id",
            {"id": session_id, "status": status},
        )
