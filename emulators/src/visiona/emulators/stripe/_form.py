"""Stripe's form encoding: ``a[b][0][c]=v`` bracket nesting, decoded into dicts and lists.

Indexed keys (``items[0][price]``) become lists, as do empty brackets (``expand[]=x``). A dict
under a ``metadata`` key keeps digit keys as strings: metadata is a map, never a list.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")
_MAPS = frozenset({"metadata"})


class FormError(ValueError):
    """A body that cannot be decoded into one consistent structure."""


def decode_form(raw: str | bytes) -> dict[str, Any]:
    """Decode a form-encoded body or query string into nested dicts and lists of strings."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FormError("Request body is not valid UTF-8") from exc
    root: dict[str, Any] = {}
    for key, value in parse_qsl(raw, keep_blank_values=True):
        match = _KEY.match(key)
        if match is None:
            raise FormError(f"Invalid parameter name: {key!r}")
        path = [match.group(1), *_SEGMENT.findall(match.group(2))]
        _assign(root, path, value, key)
    return {k: _listify(v, k) for k, v in root.items()}


def _assign(node: dict[str, Any] | list[Any], path: list[str], value: str, key: str) -> None:
    head, rest = path[0], path[1:]
    if isinstance(node, list):
        if not rest:
            node.append(value)
            return
        want_list = rest[0] == ""
        last = node[-1] if node else None
        # Rack's rule for `a[][x]=1&a[][y]=2`: keep filling the last element until a key repeats.
        if not want_list and isinstance(last, dict) and not _has_path(last, rest):
            child: dict[str, Any] | list[Any] = last
        else:
            child = [] if want_list else {}
            node.append(child)
        _assign(child, rest, value, key)
        return
    existing = node.get(head)
    if not rest:
        if isinstance(existing, dict | list):
            raise FormError(f"Invalid value for {key!r}: it is also used as a hash or array")
        node[head] = value
        return
    want_list = rest[0] == ""
    if existing is None:
        existing = [] if want_list else {}
        node[head] = existing
    elif isinstance(existing, str) or isinstance(existing, list) != want_list:
        raise FormError(f"Invalid value for {key!r}: conflicting types for the same parameter")
    _assign(existing, rest, value, key)


def _has_path(node: dict[str, Any], path: list[str]) -> bool:
    current: Any = node
    for segment in path:
        if segment == "" or not isinstance(current, dict) or segment not in current:
            return segment == "" and isinstance(current, list)
        current = current[segment]
    return True


def _listify(value: Any, key: str) -> Any:
    if isinstance(value, list):
        return [_listify(v, key) for v in value]
    if not isinstance(value, dict):
        return value
    items = {k: _listify(v, k) for k, v in value.items()}
    if key not in _MAPS and items and all(k.isdigit() for k in items):
        return [items[k] for k in sorted(items, key=int)]
    return items
