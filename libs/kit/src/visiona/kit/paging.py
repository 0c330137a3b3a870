"""Opaque cursors for keyset pagination over ``(created_at, id)``, newest first."""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

from visiona.kit.errors import InvalidArgument

MAX_PAGE = 100
DEFAULT_PAGE = 50
# A cursor as the API states it (the gateway's OpenAPI): unpadded base64url, 1-200 characters.
CURSOR_PATTERN = "^[A-Za-z0-9_-]+$"
CURSOR_MAX_LENGTH = 200
_CURSOR = re.compile(rf"[A-Za-z0-9_-]{{1,{CURSOR_MAX_LENGTH}}}")


def page_size(requested: int) -> int:
    if requested < 0 or requested > MAX_PAGE:
        raise InvalidArgument(f"page_size must be 1-{MAX_PAGE}", code="page_size_invalid")
    return requested or DEFAULT_PAGE


def encode_cursor(created_at: datetime, row_id: uuid.UUID) -> str:
    raw = f"{created_at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[datetime, uuid.UUID] | None:
    """``None`` for the first page; a malformed token is the caller's error."""
    if not token:
        return None
    # base64 decoding alone would skip characters outside its alphabet.
    if not _CURSOR.fullmatch(token):
        raise InvalidArgument("page_token is not valid", code="page_token_invalid")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        when, _, row_id = raw.partition("|")
        created_at = datetime.fromisoformat(when)
        if created_at.tzinfo is None:
            raise ValueError("naive timestamp")
        return created_at, uuid.UUID(row_id)
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument("page_token is not valid", code="page_token_invalid") from None


def parse_id(value: str, what: str) -> uuid.UUID:
    """An id from a request; anything that is not one is simply not found."""
    from visiona.kit.errors import NotFound

    try:
        return uuid.UUID(value)
    except (ValueError, TypeError):
        raise NotFound(f"no {what} {value!r}", code=f"{what}_not_found") from None


class Listed(Protocol):
    created_at: datetime
    id: uuid.UUID


L = TypeVar("L", bound=Listed)


@dataclass(frozen=True)
class Keyset:
    """A page asked for, checked before anything is read (:meth:`of`): the repository reads
    up to ``fetch`` rows after ``after``, newest first by ``(created_at, id)``, one more than
    the page so that :meth:`cut` knows whether another page follows."""

    limit: int
    after: tuple[datetime, uuid.UUID] | None

    @classmethod
    def of(cls, requested: int, token: str) -> Keyset:
        return cls(page_size(requested), decode_cursor(token))

    @property
    def fetch(self) -> int:
        return self.limit + 1

    def cut(self, rows: Sequence[L]) -> tuple[list[L], str]:
        """The page, and the cursor of the next one ("" when this is the last)."""
        page = list(rows[: self.limit])
        more = len(rows) > self.limit
        return page, encode_cursor(page[-1].created_at, page[-1].id) if more else ""
