"""Login throttling per account and per client, without storing addresses.

Each failed login writes two ``login_failure`` rows: one keyed by an HMAC of the
account name, one by an HMAC of the client address, both with the node's own key
(keys.node_key), so the table says nothing about who tried from where to anyone
without that key, and even with it an address can only be confirmed, not listed.
Rows older than the window are deleted as new failures come in."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func
from sqlmodel import col, select

from node.accounts.keys import keyed_hash, node_key
from node.federation.runtime import Node
from node.storage.models import LoginFailure

WINDOW = timedelta(minutes=15)
MAX_FAILURES = 5  # the 6th attempt within the window is refused (429)


async def _keys(node: Node, username: str, client: str) -> tuple[str, str]:
    key = await node_key(node.db, "login-throttle")
    return (keyed_hash(key, "account", username.strip().lower()[:200]),
            keyed_hash(key, "client", client))


async def blocked(node: Node, username: str, client: str, now: datetime) -> bool:
    keys = await _keys(node, username, client)
    async with node.db.read() as session:
        counts = (await session.exec(
            select(LoginFailure.key, func.count()).where(
                col(LoginFailure.key).in_(keys), LoginFailure.at > now - WINDOW)
            .group_by(LoginFailure.key))).all()
    return any(count >= MAX_FAILURES for _, count in counts)


async def record_failure(node: Node, username: str, client: str, now: datetime) -> None:
    keys = await _keys(node, username, client)
    async with node.db.write() as session:
        await session.exec(delete(LoginFailure).where(
            col(LoginFailure.at) <= now - WINDOW))
        session.add_all([LoginFailure(key=k, at=now) for k in keys])


async def clear_account(node: Node, username: str) -> None:
    """After a successful login the account's count starts again (the client's stays)."""
    account_key, _ = await _keys(node, username, "")
    async with node.db.write() as session:
        await session.exec(delete(LoginFailure).where(
            col(LoginFailure.key) == account_key))
