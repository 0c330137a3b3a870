"""What every request body of the API is made of.

A body is read strictly: a field the model does not name is refused, never silently ignored
(a misspelt ``num_outputs`` would otherwise fall back to its default and be charged), and each
value must already have its JSON type (``"2"`` is not a number, ``"true"`` not a boolean).
The 422 ``validation_error`` names the field in ``errors[].loc`` (``["body", "num_output"]``,
type ``extra_forbidden``; ``["body", "num_outputs"]``, type ``int_type``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RequestBody(BaseModel):
    """Base of every request body model (and of the models nested in one)."""

    model_config = ConfigDict(extra="forbid", strict=True)
