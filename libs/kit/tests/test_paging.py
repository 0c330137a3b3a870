"""Keyset pages: the size and the cursor checked before anything is read, one row more read than
the page, and the next page's cursor only when there is one."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from visiona.kit.errors import InvalidArgument
from visiona.kit.paging import DEFAULT_PAGE, Keyset, decode_cursor


@dataclass
class Row:
    created_at: datetime
    id: uuid.UUID


def rows(n: int) -> list[Row]:
    start = datetime(2026, 12, 1, tzinfo=UTC)
    return [Row(start - timedelta(minutes=i), uuid.uuid4()) for i in range(n)]


def test_a_full_page_with_more_behind_names_its_last_row_as_the_next_cursor() -> None:
    keyset = Keyset.of(2, "")
    assert (keyset.fetch, keyset.after) == (3, None)
    read = rows(3)
    page, token = keyset.cut(read)
    assert page == read[:2]
    assert decode_cursor(token) == (read[1].created_at, read[1].id)
    assert Keyset.of(2, token).after == (read[1].created_at, read[1].id)


def test_the_last_page_has_no_next_cursor() -> None:
    read = rows(2)
    assert Keyset.of(2, "").cut(read) == (read, "")
    assert Keyset.of(2, "").cut([]) == ([], "")


def test_the_size_and_the_cursor_are_checked_before_anything_is_read() -> None:
    assert Keyset.of(0, "").limit == DEFAULT_PAGE
    with pytest.raises(InvalidArgument):
        Keyset.of(101, "")
    with pytest.raises(InvalidArgument):
        Keyset.of(10, "not a cursor!")
