"""Response bodies of the probes (routes/health.py)."""

from __future__ import annotations

from pydantic import BaseModel


class Health(BaseModel):
    status: str


class Dependency(BaseModel):
    ready: bool
    detail: str


class Readiness(BaseModel):
    """Every dependency the gateway needs, and whether it answers."""

    ready: bool
    dependencies: dict[str, Dependency]
