"""Processing of stored inbox activities, after the 202.

Each handler is named after what it handles (``on_follow`` …). Handlers are
idempotent: an activity id is stored once (inbox.py), and each handler also
tolerates seeing state it already produced. Items are claimed with a lease
like deliveries, so several web processes can share the work.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from node.core.text import sanitise_html
from node.federation import publishing
from node.federation.remote_actors import RemoteError, get_actor, parse_actor, store_actor
from node.federation.runtime import Node
from node.storage.db import utcnow
from node.storage.models import (
    Follower,
    Following,
    InboxItem,
    Interaction,
    LocalActor,
    LocalObject,
    RemoteActor,
    RemoteObject,
)

log = logging.getLogger("hambastegi.processing")

LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 5
Handler = Callable[[Node, InboxItem], Awaitable[None]]


def _id(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else None


async def _local_actor_for(session: AsyncSession, node: Node, uri: str | None) -> LocalActor | None:
    if uri is None or not node.urls.is_local(uri):
        return None
    for actor in (await session.exec(select(LocalActor))).all():
        if node.urls.actor(actor.username) == uri:
            return actor
    return None


def _local_object_uuid(node: Node, uri: str | None) -> str | None:
    prefix = node.urls.object("")
    if uri and uri.startswith(prefix):
        return uri[len(prefix):] or None
    return None


# --- handlers --------------------------------------------------------------------


async def on_follow(node: Node, item: InboxItem) -> None:
    activity = item.body
    follower = await get_actor(node, item.actor_uri)
    async with node.db.write() as session:
        target = await _local_actor_for(session, node, _id(activity.get("object")))
        if target is None or target.actor_type == "Application":
            return
        existing = (
            await session.exec(
                select(Follower).where(
                    Follower.local_actor_id == target.id, Follower.actor_uri == follower.uri
                )
            )
        ).first()
        state = "pending" if target.manually_approves_followers else "accepted"
        if existing is None:
            existing = Follower(
                local_actor_id=target.id or 0, actor_uri=follower.uri, inbox=follower.inbox,
                shared_inbox=follower.shared_inbox, follow_activity_id=item.activity_id,
                state=state,
            )
        else:
            # A repeated Follow (e.g. after they lost our Accept): answer again.
            existing.follow_activity_id = item.activity_id
            if existing.state == "accepted":
                state = "accepted"
            existing.state = state
        session.add(existing)
        if state == "accepted":
            await send_accept(session, node, target, existing, activity)


async def send_accept(session: AsyncSession, node: Node, target: LocalActor,
                      follower: Follower, follow: dict[str, Any]) -> None:
    # Embed the Follow as received: Mastodon matches by id or embedded object.
    embedded = {k: follow[k] for k in ("id", "type", "actor", "object") if k in follow}
    await publishing.send_to(
        session, target, node.urls, activity_type="Accept", obj=embedded,
        recipient=follower.actor_uri, inbox=follower.inbox,
    )


async def send_reject(session: AsyncSession, node: Node, target: LocalActor,
                      follower: Follower) -> None:
    await publishing.send_to(
        session, target, node.urls, activity_type="Reject",
        obj={"id": follower.follow_activity_id, "type": "Follow", "actor": follower.actor_uri,
             "object": node.urls.actor(target.username)},
        recipient=follower.actor_uri, inbox=follower.inbox,
    )


async def on_undo(node: Node, item: InboxItem) -> None:
    obj = item.body.get("object")
    object_id = _id(obj)
    if object_id is None:
        return
    inner_type = obj.get("type") if isinstance(obj, dict) else None
    async with node.db.write() as session:
        # Only the actor's own Follow/Like/Announce can be undone by it.
        if inner_type in (None, "Follow"):
            await session.exec(
                delete(Follower).where(
                    col(Follower.actor_uri) == item.actor_uri,
                    col(Follower.follow_activity_id) == object_id,
                )
            )
        if inner_type in (None, "Like", "Announce"):
            await session.exec(
                delete(Interaction).where(
                    col(Interaction.activity_id) == object_id,
                    col(Interaction.actor_uri) == item.actor_uri,
                )
            )


async def _following_for(session: AsyncSession, item: InboxItem) -> Following | None:
    obj = item.body.get("object")
    follow_id = _id(obj)
    query = select(Following).where(col(Following.target_uri) == item.actor_uri)
    if follow_id:
        query = query.where(Following.follow_activity_id == follow_id)
    return (await session.exec(query)).first()


async def on_accept(node: Node, item: InboxItem) -> None:
    # Only the followed actor can accept: target_uri == the signed actor.
    async with node.db.write() as session:
        following = await _following_for(session, item)
        if following is not None and following.state != "accepted":
            following.state = "accepted"
            session.add(following)


async def on_reject(node: Node, item: InboxItem) -> None:
    async with node.db.write() as session:
        following = await _following_for(session, item)
        if following is not None:
            following.state = "rejected"
            session.add(following)


async def on_update(node: Node, item: InboxItem) -> None:
    obj = item.body.get("object")
    if not isinstance(obj, dict):
        return
    if _id(obj) == item.actor_uri:
        # Profile or key change, signed by the (old) key we already trust.
        try:
            await store_actor(node, parse_actor(obj))
        except RemoteError:
            await get_actor(node, item.actor_uri, refresh=True)
        return
    async with node.db.write() as session:
        stored = (
            await session.exec(select(RemoteObject).where(RemoteObject.uri == _id(obj)))
        ).first()
        if stored is not None and stored.actor_uri == item.actor_uri:
            stored.data = _clean_object(obj)
            session.add(stored)


async def on_delete(node: Node, item: InboxItem) -> None:
    object_id = _id(item.body.get("object"))
    async with node.db.write() as session:
        if object_id == item.actor_uri:
            await session.exec(delete(Follower).where(col(Follower.actor_uri) == item.actor_uri))
            await session.exec(delete(Following).where(col(Following.target_uri) == item.actor_uri))
            await session.exec(
                delete(Interaction).where(col(Interaction.actor_uri) == item.actor_uri)
            )
            await session.exec(
                update(RemoteActor).where(col(RemoteActor.uri) == item.actor_uri)
                .values(deleted=True)
            )
            return
        await session.exec(
            update(RemoteObject)
            .where(col(RemoteObject.uri) == object_id,
                   col(RemoteObject.actor_uri) == item.actor_uri)
            .values(deleted=True, data={"id": object_id, "type": "Tombstone"})
        )


async def _count_interaction(node: Node, item: InboxItem, kind: str) -> None:
    object_id = _id(item.body.get("object"))
    object_uuid = _local_object_uuid(node, object_id)
    if object_uuid is None or object_id is None:
        return
    async with node.db.write() as session:
        obj = await publishing.get_object(session, object_uuid)
        if obj is None or obj.deleted_at is not None:
            return
        exists = (
            await session.exec(
                select(Interaction).where(Interaction.activity_id == item.activity_id)
            )
        ).first()
        if exists is None:
            session.add(Interaction(activity_id=item.activity_id, interaction_type=kind,
                                    actor_uri=item.actor_uri, object_uri=object_id))


async def on_like(node: Node, item: InboxItem) -> None:
    await _count_interaction(node, item, "Like")


async def on_announce(node: Node, item: InboxItem) -> None:
    await _count_interaction(node, item, "Announce")


def _clean_object(obj: dict[str, Any]) -> dict[str, Any]:
    """Keep the fields we show; HTML sanitised, names as plain text later."""
    kept: dict[str, Any] = {}
    for key in ("id", "type", "attributedTo", "inReplyTo", "published", "updated", "url",
                "summary", "name", "to", "cc"):
        if key in obj:
            kept[key] = obj[key]
    if isinstance(obj.get("content"), str):
        kept["content"] = sanitise_html(obj["content"])
    content_map = obj.get("contentMap")
    if isinstance(content_map, dict):
        kept["contentMap"] = {
            str(k)[:16]: sanitise_html(v) for k, v in list(content_map.items())[:20]
            if isinstance(v, str)
        }
    return kept


async def on_create(node: Node, item: InboxItem) -> None:
    obj = item.body.get("object")
    if not isinstance(obj, dict):
        return
    in_reply_to = _id(obj.get("inReplyTo"))
    if in_reply_to is None or _local_object_uuid(node, in_reply_to) is None:
        return  # Not about us: stored in the inbox table, nothing more.
    object_id = _id(obj)
    if object_id is None:
        return
    async with node.db.write() as session:
        exists = (
            await session.exec(select(RemoteObject).where(RemoteObject.uri == object_id))
        ).first()
        if exists is None:
            session.add(RemoteObject(
                uri=object_id, actor_uri=item.actor_uri,
                object_type=str(obj.get("type", "Note"))[:32], in_reply_to=in_reply_to,
                data=_clean_object(obj),
            ))


# Several handlers may share a type (an Accept may answer a Follow or an
# Invite): each one acts only on what is addressed to it.
HANDLERS: dict[str, list[Handler]] = {
    "Follow": [on_follow],
    "Undo": [on_undo],
    "Accept": [on_accept],
    "Reject": [on_reject],
    "Update": [on_update],
    "Delete": [on_delete],
    "Like": [on_like],
    "Announce": [on_announce],
    "Create": [on_create],
}


def register(activity_type: str, handler: Handler) -> None:
    """Domain modules (events, networks …) add their handlers here."""
    handlers = HANDLERS.setdefault(activity_type, [])
    if handler not in handlers:
        handlers.append(handler)


# --- the processing loop -------------------------------------------------------------


async def claim(node: Node, limit: int = 50) -> list[InboxItem]:
    now = utcnow()
    async with node.db.write() as session:
        query = (
            select(InboxItem)
            .where(
                or_(
                    (col(InboxItem.state) == "pending") & (col(InboxItem.next_attempt_at) <= now),
                    (col(InboxItem.state) == "processing")
                    & (col(InboxItem.next_attempt_at) <= now),
                )
            )
            .order_by(col(InboxItem.id))
            .limit(limit)
        )
        if not node.db.is_sqlite:
            query = query.with_for_update(skip_locked=True)
        items = list((await session.exec(query)).all())
        for item in items:
            item.state = "processing"
            item.attempts += 1
            item.next_attempt_at = now + LEASE  # the lease; expiry = crashed processor
            session.add(item)
    return items


async def process_item(node: Node, item: InboxItem) -> str | None:
    """Run every handler of the item's type; returns the error, if any."""
    error: str | None = None
    for handler in HANDLERS.get(item.activity_type, []):
        try:
            await handler(node, item)
        except Exception as exc:  # one bad activity must not stop the loop
            error = f"{type(exc).__name__}: {exc}"[:400]
            log.warning("inbox item failed", extra={"activity_type": item.activity_type,
                                                    "error": error}, exc_info=True)
    return error


async def record_results(node: Node, results: list[tuple[InboxItem, str | None]]) -> None:
    """One transaction per batch: most items simply become ``done``."""
    now = utcnow()
    done = [item.id for item, error in results if error is None]
    async with node.db.write() as session:
        if done:
            await session.exec(update(InboxItem).where(col(InboxItem.id).in_(done))
                               .values(state="done", processed_at=now, error=None))
        for item, error in results:
            if error is None:
                continue
            if item.attempts >= MAX_ATTEMPTS:
                values: dict[str, object] = {"state": "failed", "error": error}
            else:
                values = {"state": "pending", "error": error,
                          "next_attempt_at": now + timedelta(seconds=30 * 2 ** item.attempts)}
            await session.exec(update(InboxItem).where(col(InboxItem.id) == item.id)
                               .values(**values))


async def process_pending(node: Node) -> int:
    """Process everything due now; returns how many items were handled."""
    done = 0
    while True:
        items = await claim(node, limit=200)
        if not items:
            return done
        await record_results(node, [(item, await process_item(node, item)) for item in items])
        done += len(items)
        node.changed()


async def run(node: Node, stop: asyncio.Event) -> None:
    while not stop.is_set():
        # Clear before working: a wake-up during the work is then not lost.
        node.inbox_wake.clear()
        try:
            await process_pending(node)
        except Exception:  # keep the loop alive; leases retry the work
            log.exception("inbox processing loop error")
        waiter = asyncio.ensure_future(node.inbox_wake.wait())
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait({waiter, stopper}, timeout=node.settings.worker_poll_seconds,
                           return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        stopper.cancel()


__all__ = ["HANDLERS", "LocalObject", "process_pending", "register", "run"]
