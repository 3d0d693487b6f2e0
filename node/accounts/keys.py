"""Random keys the node makes once and keeps in the database (``node_secret``), so
every web process of the node signs and checks with the same key."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import weakref

from sqlalchemy.exc import IntegrityError

from node.storage.db import Database
from node.storage.models import NodeSecret

_KEYS: weakref.WeakKeyDictionary[Database, dict[str, bytes]] = weakref.WeakKeyDictionary()


async def node_key(db: Database, name: str) -> bytes:
    cached = _KEYS.setdefault(db, {})
    if name in cached:
        return cached[name]
    async with db.read() as session:
        row = await session.get(NodeSecret, name)
    if row is None:
        try:
            async with db.write() as session:
                session.add(NodeSecret(name=name, value=secrets.token_bytes(32)))
        except IntegrityError:
            pass  # another process made it first: read theirs
        async with db.read() as session:
            row = await session.get(NodeSecret, name)
    assert row is not None
    cached[name] = row.value
    return row.value


def keyed_hash(key: bytes, *parts: str) -> str:
    """HMAC-SHA256 of the parts, hex: a value that cannot be reversed or recomputed
    without the node's key (a client address cannot be found by trying all of them)."""
    return hmac.new(key, "\x00".join(parts).encode(), hashlib.sha256).hexdigest()


def token_hash(token: str) -> str:
    """How random tokens (sessions, links) are stored: their SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()
