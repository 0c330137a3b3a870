"""``accounts`` (the profile Clerk sends) and ``clerk_webhooks`` (deliveries already applied)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from visiona.kit.db import UnitOfWork


async def record_clerk_delivery(uow: UnitOfWork, svix_id: str, kind: str) -> bool:
    """Record a Clerk delivery; False when it was recorded before (a redelivery)."""
    first = (
        await uow.session.execute(
            sa.text(
                "INSERT INTO clerk_webhooks (svix_id, type) VALUES (:id, :type) "
                "ON CONFLICT (svix_id) DO NOTHING RETURNING svix_id"
            ),
            {"id": svix_id, "type": kind},
        )
    ).first()
    return first is not None


async def upsert_from_clerk(
    uow: UnitOfWork,
    user_id: str,
    *,
    email: str | None,
    first_name: str | None,
    last_name: str | None,
    image_url: str | None,
    clerk_updated_at: int,
) -> None:
    """Create or update the account; a delivery older than the stored one changes nothing."""
    await uow.session.execute(
        sa.text(
            "INSERT INTO accounts (user_id, email, first_name, last_name, image_url,"
            " clerk_updated_at) VALUES (:u, :email, :first, :last, :image, :at)"
            " ON CONFLICT (user_id) DO UPDATE SET email = EXCLUDED.email,"
            " first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name,"
            " image_url = EXCLUDED.image_url, clerk_updated_at = EXCLUDED.clerk_updated_at,"
            " updated_at = now() WHERE accounts.clerk_updated_at < EXCLUDED.clerk_updated_at"
        ),
        {
            "u": user_id,
            "email": email,
            "first": first_name,
            "last": last_name,
            "image": image_url,
            "at": clerk_updated_at,
        },
    )


async def profile(uow: UnitOfWork, user_id: str) -> dict[str, Any] | None:
    row = (
        await uow.session.execute(
            sa.text(
                "SELECT email, first_name, last_name, image_url FROM accounts WHERE user_id = :u"
            ),
            {"u": user_id},
        )
    ).first()
    return dict(row._mapping) if row is not None else None


async def profile_for_export(uow: UnitOfWork, user_id: str) -> list[dict[str, Any]]:
    """The account row as the user's export shows it (zero or one)."""
    result = await uow.session.execute(
        sa.text(
            "SELECT user_id, email, first_name, last_name, image_url, created_at,"
            " updated_at FROM accounts WHERE user_id = :u"
        ),
        {"u": user_id},
    )
    return [dict(r._mapping) for r in result]
