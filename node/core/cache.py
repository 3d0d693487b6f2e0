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
        return self.put_raw(key, orjson.dumps(doc), ttl)

    def put_raw(self, key: Hashable, body: bytes, ttl: float = DEFAULT_TTL) -> bytes:
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


class KeyCache:
    """Verified-sender keys in memory: the inbox's hot path must not query the
    database (or parse PEM) per request. Entries expire, and any refresh of
    the actor (Update, rotation) drops them at once in this process."""

    def __init__(self, ttl: float = 600.0, max_entries: int = 10_000) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._entries: dict[str, tuple[float, Any]] = {}

    def get(self, key_id: str) -> Any:
        entry = self._entries.get(key_id)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, key_id: str, value: Any) -> None:
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[key_id] = (time.monotonic() + self._ttl, value)

    def forget_actor(self, actor_uri: str) -> None:
        for key_id in [k for k, (_, v) in self._entries.items() if v[0].uri == actor_uri]:
            del self._entries[key_id]
