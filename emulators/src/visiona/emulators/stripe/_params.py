"""Typed access to decoded form parameters, raising Stripe's validation errors."""

from __future__ import annotations

from typing import Any

from visiona.emulators.stripe._errors import StripeError, invalid, missing

Params = dict[str, Any]

_METADATA_MAX_KEYS = 50
_METADATA_KEY_MAX = 40
_METADATA_VALUE_MAX = 500


def name(prefix: str, key: str) -> str:
    """The parameter's name as Stripe reports it: ``line_items[0][price]``."""
    return f"{prefix}[{key}]" if prefix else key


def opt_str(params: Params, key: str, prefix: str = "") -> str | None:
    value = params.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(f"Invalid string: {value!r}", name(prefix, key), "parameter_invalid_string")
    return value


def req_str(params: Params, key: str, prefix: str = "") -> str:
    value = opt_str(params, key, prefix)
    if not value:
        raise missing(name(prefix, key))
    return value


def opt_choice(params: Params, key: str, choices: tuple[str, ...], prefix: str = "") -> str | None:
    value = opt_str(params, key, prefix)
    if value is not None and value not in choices:
        raise invalid(
            f"Invalid {key}: must be one of {', '.join(choices)}", name(prefix, key), None
        )
    return value


def opt_int(
    params: Params, key: str, prefix: str = "", *, minimum: int | None = None
) -> int | None:
    raw = opt_str(params, key, prefix)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise invalid(
            f"Invalid integer: {raw}", name(prefix, key), "parameter_invalid_integer"
        ) from None
    if minimum is not None and value < minimum:
        raise invalid(
            f"This value must be greater than or equal to {minimum}.",
            name(prefix, key),
            "parameter_invalid_integer",
        )
    return value


def opt_bool(params: Params, key: str, prefix: str = "") -> bool | None:
    raw = opt_str(params, key, prefix)
    if raw is None:
        return None
    if raw not in ("true", "false"):
        raise invalid(f"Invalid boolean: {raw}", name(prefix, key))
    return raw == "true"


def opt_dict(params: Params, key: str, prefix: str = "") -> Params | None:
    value = params.get(key)
    if value is None:
        return None
    if value == "":
        return {}
    if not isinstance(value, dict):
        raise invalid(f"Invalid hash: {value!r}", name(prefix, key))
    return value


def opt_list(params: Params, key: str, prefix: str = "") -> list[Any] | None:
    value = params.get(key)
    if value is None:
        return None
    if value == "":
        return []
    if not isinstance(value, list):
        raise invalid(f"Invalid array: {value!r}", name(prefix, key))
    return value


def metadata(params: Params, key: str = "metadata", prefix: str = "") -> dict[str, str] | None:
    """A metadata map; ``None`` when absent, ``{}`` when sent empty (``metadata=``).

    Values stay as sent: ``""`` means "delete this key" on update.
    """
    value = opt_dict(params, key, prefix)
    if value is None:
        return None
    param = name(prefix, key)
    for k, v in value.items():
        if not isinstance(v, str):
            raise invalid(f"Invalid string: metadata values must be strings ({k})", f"{param}[{k}]")
        if len(k) > _METADATA_KEY_MAX:
            raise invalid(
                f"Metadata keys can have up to {_METADATA_KEY_MAX} characters.", f"{param}[{k}]"
            )
        if len(v) > _METADATA_VALUE_MAX:
            raise invalid(
                f"Metadata values can have up to {_METADATA_VALUE_MAX} characters.",
                f"{param}[{k}]",
            )
    if len(value) > _METADATA_MAX_KEYS:
        raise invalid(f"Metadata can have up to {_METADATA_MAX_KEYS} keys.", param)
    return dict(value)


def new_metadata(params: Params, key: str = "metadata", prefix: str = "") -> dict[str, str]:
    """Metadata for a new object: empty values are simply not stored."""
    return {k: v for k, v in (metadata(params, key, prefix) or {}).items() if v != ""}


def merge_metadata(current: dict[str, str], update: dict[str, str] | None) -> dict[str, str]:
    """Stripe's update rule: keys merge, ``""`` deletes a key, ``metadata=`` clears all."""
    if update is None:
        return current
    if not update:
        return {}
    merged = {**current, **update}
    return {k: v for k, v in merged.items() if v != ""}


def unknown_parameter(key: str) -> StripeError:
    return StripeError(
        400, f"Received unknown parameter: {key}", code="parameter_unknown", param=key
    )
