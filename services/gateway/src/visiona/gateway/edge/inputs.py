"""What the API's requests are made of: every body, and the cursors of its lists.

A body is read strictly: a field the model does not name is refused, never silently ignored
(a misspelt ``num_outputs`` would otherwise fall back to its default and be charged), and each
value must already have its JSON type (``"2"`` is not a number, ``"true"`` not a boolean).
The 422 ``validation_error`` names the field in ``errors[].loc`` (``["body", "num_output"]``,
type ``extra_forbidden``; ``["body", "num_outputs"]``, type ``int_type``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from pydantic import BaseModel, ConfigDict

from visiona.kit.paging import CURSOR_MAX_LENGTH, CURSOR_PATTERN


class RequestBody(BaseModel):
    """Base of every request body model (and of the models nested in one)."""

    model_config = ConfigDict(extra="forbid", strict=True)


# A page token: the `next_cursor` of the page before (opaque; the format is what the API checks).
Cursor = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=CURSOR_MAX_LENGTH,
        pattern=CURSOR_PATTERN,
        description="The `next_cursor` of the previous page",
    ),
]
# How many items a page holds at most (the default: 50).
Limit = Annotated[int, Query(ge=1, le=100)]
