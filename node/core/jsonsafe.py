"""Bounded JSON parsing for everything that arrives from outside.

orjson refuses nesting deeper than 1024 itself; we refuse far earlier
(activities are shallow) and walk iteratively, so hostile input can never
exhaust the stack or make later recursive code (serialisers, sanitisers) slow.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import orjson

MAX_DEPTH = 32
MAX_BODY = 1_048_576  # Mastodon's own inbox limit (INTEROP.md)


class JsonError(ValueError):
    """The body is not acceptable JSON; the message is safe to show the sender."""


def nesting_depth(value: Any) -> int:
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in item)
    return deepest


def parse_object(body: bytes, *, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """Parse a JSON object or raise JsonError with a short reason."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise JsonError("malformed JSON") from exc
    if not isinstance(value, dict):
        raise JsonError("expected a JSON object")
    if nesting_depth(value) > max_depth:
        raise JsonError(f"JSON nested deeper than {max_depth}")
    return value


MAX_ID_LENGTH = 2048


def as_id(value: Any) -> str | None:
    """The id of a JSON-LD value: a string, or an object's ``id``; only
    http(s) URLs of sane length that parse with a host count (ActivityPub §3.1;
    ``http://[::1`` does not), anything else is None."""
    if isinstance(value, dict):
        value = value.get("id")
    if not isinstance(value, str) or len(value) > MAX_ID_LENGTH \
            or not value.startswith(("https://", "http://")):
        return None
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return None
    return value if parts.hostname else None


def as_list(value: Any) -> list[Any]:
    """A JSON-LD property as a list (absent → [], one value → [value])."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)
