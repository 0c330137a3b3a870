"""The answer to a provider's webhook delivery (routes/webhooks.py)."""

from __future__ import annotations

from pydantic import BaseModel


class Received(BaseModel):
    received: bool
    event_id: str
    duplicate: bool
