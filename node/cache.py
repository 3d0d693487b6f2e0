"""Serialised hot documents (actor, WebFinger, NodeInfo), kept briefly in memory.

Each process keeps its own copy; a change made in this process invalidates
at once, a change made by another process (the CLI, a second web process) is
seen after the TTL. That bound is why the TTL is short.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Hashable
from typing import Any

import orjson

DEFAULT_TTL = 10.0
MAX_ENTRIES = 4096


class DocCache:
    def __init__(self) -> None:
        self._entries: dict[Hashable, tuple[float, bytes, str]] = {}

    def get(self, key: Hashable) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def etag(self, key: Hashable) -> str | None:
        entry = self._entries.get(key)
        return entry[2] if entry is not None else None

    def put(self, key: Hashable, doc: Any, ttl: float = DEFAULT_TTL) -> bytes:
        body = orjson.dumps(doc)
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        self._entries[key] = (time.monotonic() + ttl, body, etag)
        return body

    def invalidate(self, *keys: Hashable) -> None:
        for key in keys:
            self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()
