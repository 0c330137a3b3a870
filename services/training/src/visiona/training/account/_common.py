"""What the erasure and the export workers share."""

from __future__ import annotations

from datetime import UTC, datetime

SERVICE = "training"


def now() -> datetime:
    return datetime.now(UTC)
