"""The federation layer's handlers of inbound activities, run after the 202
by the inbox queue (inbox_queue.py) through the handler table of
node/inbound.py.

Each handler is named after what it handles (``on_follow`` …). Handlers are
idempotent: an activity id is stored once (inbox.py), each handler tolerates
seeing state it already produced, and what it sends carries ids derived from
the inbox item (``dispatch.emission_uuid``), so a retry sends nothing twice.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import delete, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from node.core.jsonsafe import as_id
from node.federation import delivery, outbox_sync, publishing, remote_posts
from node.federation.dispatch import emission_uuid
from node.federation.remote_actors import RemoteError, get_actor, parse_actor, store_actor
from node.federation.runtime import Node
from node.storage.models import (
    ClientNotification,
    Follower,
    Following,
    InboxItem,
    Interaction,
    LocalActor,
    RemoteActor,
)
from node.storage.states import AlreadyDecided, FollowerState, following_answered

log = logging.getLogger("hambastegi.processing")


async def _local_actor_for(session: AsyncSession, node: Node, uri: str | None) -> LocalActor | None:
    username = node.urls.local_username(uri)
    if username is None:
        return None
    return (await session.exec(select(LocalActor).where(LocalActor.username == username))).first()


def notify(session: AsyncSession, local_actor_id: int | None, kind: str, account_uri: str,
           status_uri: str | None = None) -> None:
    """A notification for the group's editors' apps (node/clientapi/notifications.py),
    in the transaction that stores what it is about, so a retried item adds none twice."""
    if local_actor_id is not None:
        session.add(ClientNotification(local_actor_id=local_actor_id, notification_type=kind,
                                       account_uri=account_uri, status_uri=status_uri))


# --- handlers --------------------------------------------------------------------


async def on_follow(node: Node, item: InboxItem) -> None:
    activity = item.body
    follower = await get_actor(node, item.actor_uri)
    async with node.db.write() as session:
        target = await _local_actor_for(session, node, as_id(activity.get("object")))
        if target is None or target.actor_type == "Application":
            return
        existing = (
            await session.exec(
                select(Follower).where(
                    Follower.local_actor_id == target.id, Follower.actor_uri == follower.uri
                )
            )
        ).first()
        state = (FollowerState.PENDING if target.manually_approves_followers
                 else FollowerState.ACCEPTED)
        if existing is None:
            existing = Follower(
                local_actor_id=target.id or 0, actor_uri=follower.uri, inbox=follower.inbox,
                shared_inbox=follower.shared_inbox, follow_activity_id=item.activity_id,
                state=state,
            )
            notify(session, target.id, "follow" if state == FollowerState.ACCEPTED
                   else "follow_request", follower.uri)
        else:
            # A repeated Follow (e.g. after they lost our Accept): answer again.
            existing.follow_activity_id = item.activity_id
            if existing.state == FollowerState.ACCEPTED:
                state = FollowerState.ACCEPTED
            existing.state = state
        # Where it is delivered to, and (if accepted) its host's lane.
        await delivery.prepare_follower(session, existing)
        if state == FollowerState.ACCEPTED:
            await send_accept(session, node, target, existing, activity,
                              activity_uuid=emission_uuid(item, "accept"))


async def send_accept(session: AsyncSession, node: Node, target: LocalActor,
                      follower: Follower, follow: dict[str, Any], *,
                      activity_uuid: str | None = None) -> None:
    # Embed the Follow as received: Mastodon matches by id or embedded object.
    embedded = {k: follow[k] for k in ("id", "type", "actor", "object") if k in follow}
    await publishing.send_to(
        session, target, node.urls, activity_type="Accept", obj=embedded,
        recipient=follower.actor_uri, inbox=follower.inbox, activity_uuid=activity_uuid,
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
    object_id = as_id(obj)
    inner_type = obj.get("type") if isinstance(obj, dict) else None
    if object_id is None:
        if inner_type == "Follow" and isinstance(obj, dict):
            # FEP-8fcf heals with a Follow it has no id for
            await _undo_follow_of(node, item, as_id(obj.get("object")))
        return
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


async def _undo_follow_of(node: Node, item: InboxItem, target: str | None) -> None:
    """An Undo of "my Follow of <target>" without the Follow's id: the signed
    actor stops following our actor ``target``, whatever its Follow's id was."""
    async with node.db.write() as session:
        local = await _local_actor_for(session, node, target)
        if local is not None:
            await session.exec(delete(Follower).where(
                col(Follower.actor_uri) == item.actor_uri,
                col(Follower.local_actor_id) == local.id))


async def _following_for(session: AsyncSession, item: InboxItem) -> Following | None:
    obj = item.body.get("object")
    follow_id = as_id(obj)
    query = select(Following).where(col(Following.target_uri) == item.actor_uri)
    if follow_id:
        query = query.where(Following.follow_activity_id == follow_id)
    return (await session.exec(query)).first()


async def _answer_to_follow(node: Node, item: InboxItem, *, accepted: bool) -> None:
    # Only the followed actor can answer: target_uri == the signed actor.
    async with node.db.write() as session:
        following = await _following_for(session, item)
        if following is None:
            return
        try:
            following.state = following_answered(following.state, accepted=accepted)
        except AlreadyDecided:
            return  # an Accept after a Reject changes nothing
        session.add(following)
        if accepted:
            # Backfill: the sync worker walks the actor's outbox (bounded) soon
            # after this commit; never here, inside the transaction.
            await outbox_sync.schedule(session, following.target_uri)
    if accepted:
        node.sync_wake()


async def on_accept_follow(node: Node, item: InboxItem) -> None:
    await _answer_to_follow(node, item, accepted=True)


async def on_reject_follow(node: Node, item: InboxItem) -> None:
    await _answer_to_follow(node, item, accepted=False)


async def on_update(node: Node, item: InboxItem) -> None:
    obj = item.body.get("object")
    if not isinstance(obj, dict):
        return
    if as_id(obj) == item.actor_uri:
        # Profile or key change, signed by the (old) key we already trust.
        try:
            await store_actor(node, parse_actor(obj))
        except RemoteError:
            await get_actor(node, item.actor_uri, refresh=True)
        return
    async with node.db.write() as session:
        if await remote_posts.refresh(session, obj, item.actor_uri):
            return
        # Not stored yet: a post of a followed actor is kept from its Update too
        # (we may have missed the Create while down; catch-up would find it).
        if (remote_posts.is_post(obj) and remote_posts.vouched_id(obj, item.actor_uri)
                and await remote_posts.follows(session, item.actor_uri)):
            await remote_posts.upsert(session, obj, item.actor_uri, source="inbox")


async def on_delete(node: Node, item: InboxItem) -> None:
    object_id = as_id(item.body.get("object"))
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
        if object_id is not None:
            await remote_posts.tombstone(session, object_id, item.actor_uri)


async def _count_interaction(node: Node, item: InboxItem, kind: str) -> None:
    object_id = as_id(item.body.get("object"))
    object_uuid = node.urls.local_object_uuid(object_id)
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
            notify(session, obj.local_actor_id, "favourite" if kind == "Like" else "reblog",
                   item.actor_uri, object_id)


async def on_like(node: Node, item: InboxItem) -> None:
    await _count_interaction(node, item, "Like")


async def on_announce(node: Node, item: InboxItem) -> None:
    await _count_interaction(node, item, "Announce")


async def on_create(node: Node, item: InboxItem) -> None:
    """Replies to our posts (held for moderation) and posts of actors our groups
    follow (approved): both only when the signed actor vouches for the object
    (remote_posts.vouched_id: its own object, on its own origin)."""
    obj = item.body.get("object")
    if not isinstance(obj, dict):
        return
    in_reply_to = as_id(obj.get("inReplyTo"))
    to_us = in_reply_to is not None and node.urls.local_object_uuid(in_reply_to) is not None
    if remote_posts.vouched_id(obj, item.actor_uri, author_required=not to_us) is None:
        return
    async with node.db.write() as session:
        if to_us:
            new = await remote_posts.upsert(session, obj, item.actor_uri, source="inbox",
                                            in_reply_to=in_reply_to, moderation_state="pending")
            parent_uuid = node.urls.local_object_uuid(in_reply_to)
            parent = await publishing.get_object(session, parent_uuid) if parent_uuid else None
            if new and parent is not None:
                notify(session, parent.local_actor_id, "mention", item.actor_uri, as_id(obj))
        elif remote_posts.is_post(obj) and await remote_posts.follows(session, item.actor_uri):
            await remote_posts.upsert(session, obj, item.actor_uri, source="inbox",
                                      in_reply_to=in_reply_to)
        # Anything else is not about us: stored in the inbox table, nothing more.
