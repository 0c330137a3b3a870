"""Errors in Stripe's shape: ``{"error": {"type", "message", "param", "code"}}``."""

from __future__ import annotations

from typing import Any


class StripeError(Exception):
    """An API error carrying its HTTP status and the fields of Stripe's error object."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type = status, message, type
        self.code, self.param, self.extra = code, param, extra

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "type": self.type,
                "message": self.message,
                "param": self.param,
                "code": self.code,
                **self.extra,
            }
        }


def no_such(kind: str, obj_id: str, param: str = "id") -> StripeError:
    """Unknown object: 404 when it is the URL's object, 400 when a parameter names it."""
    return StripeError(
        404 if param == "id" else 400,
        f"No such {kind}: '{obj_id}'",
        code="resource_missing",
        param=param,
    )


def invalid(message: str, param: str | None = None, code: str | None = None) -> StripeError:
    return StripeError(400, message, code=code, param=param)


def missing(param: str) -> StripeError:
    return StripeError(
        400, f"Missing required param: {param}.", code="parameter_missing", param=param
    )


def conflict(message: str) -> StripeError:
    """A browser or emulator action on an object in the wrong state."""
    return StripeError(409, message, code="invalid_state")
