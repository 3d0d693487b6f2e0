"""Connections of our actors to outside accounts: store (sealed), list, disconnect.

The service-specific checks that come first (the bot is an admin of the channel, the
app password logs in) are in telegram/connect.py and bluesky/connect.py; nothing is
stored unless they pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func
from sqlmodel import col, select

from node.crosspost.secrets import context_of, seal, secrets_key
from node.federation.runtime import Node
from node.groups.errors import OperationError
from node.storage.db import utcnow
from node.storage.models import CrosspostAccount, CrosspostItem, LocalActor
from node.storage.states import CrosspostAccountState


async def local_actor(node: Node, name: str) -> LocalActor:
    """A group or a language channel (koeln_fa) of this node, by its name."""
    async with node.db.read() as session:
        actor = (await session.exec(select(LocalActor).where(
            LocalActor.username == name.strip().lstrip("@")))).first()
    if actor is None or actor.actor_type not in ("Group", "Organization", "Person"):
        raise OperationError(f"no group or channel named {name!r}", 404)
    return actor


async def store(node: Node, actor: LocalActor, service: str, target: str, secret: str, *,
                remote_id: str | None = None, endpoint: str | None = None,
                session_state: str | None = None) -> CrosspostAccount:
    """Insert or replace the connection; a paused one is active again."""
    key = await secrets_key(node.db)
    context = context_of(service, actor.id or 0, target)
    async with node.db.write() as session:
        row = (await session.exec(select(CrosspostAccount).where(
            CrosspostAccount.local_actor_id == actor.id, CrosspostAccount.service == service,
            CrosspostAccount.target == target))).first()
        if row is None:
            row = CrosspostAccount(local_actor_id=actor.id or 0, service=service,
                                   target=target, secret=b"")
        row.secret = seal(key, secret, context)
        row.session = seal(key, session_state, context) if session_state else None
        row.remote_id, row.endpoint = remote_id, endpoint
        row.state, row.paused_reason = CrosspostAccountState.ACTIVE, None
        row.next_send_at = utcnow()
        session.add(row)
        await session.flush()
        session.expunge(row)
    return row


@dataclass(frozen=True)
class Listed:
    actor: str
    service: str
    target: str
    state: str
    paused_reason: str | None
    items: dict[str, int]


async def list_connections(node: Node, service: str | None = None) -> list[Listed]:
    async with node.db.read() as session:
        query = (select(CrosspostAccount, LocalActor.username)
                 .join(LocalActor, col(LocalActor.id) == col(CrosspostAccount.local_actor_id))
                 .order_by(col(LocalActor.username), col(CrosspostAccount.target)))
        if service:
            query = query.where(CrosspostAccount.service == service)
        rows = (await session.exec(query)).all()
        counts = (await session.exec(
            select(CrosspostItem.account_id, CrosspostItem.state, func.count())
            .group_by(col(CrosspostItem.account_id), col(CrosspostItem.state)))).all()
    per: dict[int, dict[str, int]] = {}
    for account_id, state, count in counts:
        per.setdefault(account_id, {})[str(state)] = int(count)
    return [Listed(name, a.service, a.target, a.state, a.paused_reason, per.get(a.id or 0, {}))
            for a, name in rows]


async def disconnect(node: Node, actor_name: str, service: str, target: str) -> None:
    """Forget the connection, its secret and its queue (what was posted stays there)."""
    actor = await local_actor(node, actor_name)
    async with node.db.write() as session:
        row = (await session.exec(select(CrosspostAccount).where(
            CrosspostAccount.local_actor_id == actor.id, CrosspostAccount.service == service,
            CrosspostAccount.target == target))).first()
        if row is None:
            raise OperationError(f"{actor.username} is not connected to {target}", 404)
        await session.exec(delete(CrosspostItem).where(
            col(CrosspostItem.account_id) == row.id))
        await session.delete(row)
