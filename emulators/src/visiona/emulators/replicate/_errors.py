"""Errors as RFC 7807 problem+json, the shape the SDK turns into ``ReplicateError``."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any


class ProblemError(Exception):
    """An API error carrying its HTTP status."""

    def __init__(self, status: int, detail: str, title: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail
        self.title = title or HTTPStatus(status).phrase

    def body(self) -> dict[str, Any]:
        return {"detail": self.detail, "status": self.status, "title": self.title}


def not_found(detail: str = "Not found.") -> ProblemError:
    return ProblemError(404, detail)


def invalid(detail: str) -> ProblemError:
    return ProblemError(422, detail, "Input validation failed")


def conflict(detail: str) -> ProblemError:
    return ProblemError(409, detail)
