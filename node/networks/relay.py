"""The relay: a network ``Announce``s its members' public posts to its followers
(FEP-1b12 style), so one follow of the network brings every member's calls and
news. FEDERATION.md, "Networks: the relay".

How posts arrive: the network follows each accepted member (members.py), so the
member's node delivers its Creates, Updates and Deletes here like to any
follower. What is relayed: only an object authored by a current member,
checked against its origin — the activity is signed by the member (the inbox
verified that) and the object's id is on the member's origin, or, when the
object came only as an id, the hub fetched it from that origin. A copy embedded
by anyone else (an Announce by a third party, say) is never relayed.

What goes out: ``Announce{<object id>}`` for a new post — receivers fetch the
object from its origin (Mastodon does so for an Announce of an object not
attributed to the announcer, and keeps one boost per announcer and post) —;
``Announce{Update}`` and ``Announce{Delete}`` (the member's activity with the
object by id) for changes of posts the network relayed before: FEP-1b12
receivers apply them, Mastodon drops an Announce whose object is not a status.

Posts learnt by peer sync (a catch-up after this node was down) are relayed by
the same rules (``on_synced``), once: the Announce's id is derived from the
object, whichever path brought it. Peer policy holds here too: nothing from a
blocked domain is relayed, member or not (``refused``).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select

from node.core.jsonsafe import as_id
from node.federation import policy, publishing
from node.federation.dispatch import derived_uuid
from node.federation.remote_actors import RemoteError, fetch_document, same_origin
from node.federation.remote_posts import published_at
from node.federation.runtime import Node
from node.federation.vocabulary import PUBLIC, addressed_to_public
from node.storage.db import as_utc, utcnow
from node.storage.models import Activity, InboxItem, LocalActor, Network, NetworkMembership
from node.storage.states import MembershipState

log = logging.getLogger("hambastegi.networks")

# Posts a network repeats: notes, news items (Article), calls (Event), pages.
RELAYED_TYPES = frozenset({"Note", "Article", "Event", "Page"})


def _first_id(value: Any) -> str | None:
    if isinstance(value, list):
        return as_id(value[0]) if value else None
    return as_id(value)


def relayable(doc: Any, object_id: str, member: str) -> bool:
    """A public post of ``member``'s own, at ``object_id`` on the member's origin."""
    if not isinstance(doc, dict) or doc.get("type") not in RELAYED_TYPES:
        return False
    if as_id(doc) != object_id or not same_origin(object_id, member):
        return False
    if _first_id(doc.get("attributedTo")) != member or doc.get("inReplyTo"):
        return False
    return addressed_to_public(doc)


async def _networks_of_member(node: Node, member: str) -> list[int]:
    """Ids of our networks ``member`` currently belongs to (one indexed query: the
    cheap answer for every Create that is not a member's)."""
    return [network_id for network_id, _ in await _memberships(node, member)]


async def _memberships(node: Node, member: str) -> list[tuple[int, datetime]]:
    """Our networks ``member`` currently belongs to, with when it was accepted
    (``updated_at`` of an accepted row: decide_application sets it)."""
    async with node.db.read() as session:
        return [(network_id, accepted_at) for network_id, accepted_at in (await session.exec(
            select(NetworkMembership.network_id, NetworkMembership.updated_at).where(
                NetworkMembership.member_uri == member,
                NetworkMembership.state == MembershipState.ACCEPTED))).all()]


async def refused(node: Node, member: str, object_id: str) -> bool:
    """Whether peer policy forbids relaying: the member's or the object's host is
    blocked (subdomains included), or not listed in allowlist mode
    (FEDERATION.md "Peer policy"). The inbox already drops a blocked actor's
    items; this covers what was queued or synced before a block, and blocks made
    by another process moments ago (the rules are re-read when they changed)."""
    await node.current_policy()
    return any(policy.refusal(node, uri) is not None for uri in (member, object_id))


async def _origin_copy(node: Node, obj: Any, member: str) -> tuple[str, Any] | None:
    """The object's id and the document to check: the member's own embedded copy,
    else the one fetched from the member's origin."""
    object_id = as_id(obj)
    if object_id is None or object_id == member or not same_origin(object_id, member):
        return None
    if isinstance(obj, dict):
        return object_id, obj
    try:
        return object_id, await fetch_document(node, object_id)
    except RemoteError as exc:
        log.info("relay: object not fetched", extra={"reason": exc.reason})
        return None


async def _announce(node: Node, member: str, cause: str, network_ids: list[int], obj: Any,
                    object_id: str, *, first: bool) -> None:
    """Announce ``obj`` from each network. ``first``: a new post, announced once
    per network and object whichever path brought it (inbox or peer sync: the
    Announce's id is derived from the object, and an Announce recorded for it
    stops a second); else a change (``cause``: the member's Update or Delete),
    relayed only for posts the network relayed before."""
    if await refused(node, member, object_id):
        log.info("relay refused by peer policy")
        return
    for network_id in network_ids:
        async with node.db.write() as session:
            row = (await session.exec(select(LocalActor, NetworkMembership).join(
                Network, col(Network.actor_id) == col(LocalActor.id)).join(
                NetworkMembership, col(NetworkMembership.network_id) == col(Network.id)).where(
                Network.id == network_id, NetworkMembership.member_uri == member,
                NetworkMembership.state == MembershipState.ACCEPTED))).first()
            if row is None:
                continue  # left or removed meanwhile
            actor = row[0]
            relayed = (await session.exec(select(Activity.id).where(
                Activity.local_actor_id == actor.id, Activity.activity_type == "Announce",
                Activity.object_uri == object_id))).first() is not None
            if relayed == first:
                continue
            await publishing.record_activity(
                session, actor, node.urls, activity_type="Announce", obj=obj, to=[PUBLIC],
                cc=[node.urls.followers(actor.username), member], to_followers=True,
                object_uri=object_id,
                activity_uuid=derived_uuid(object_id if first else cause,
                                           f"network-relay:{network_id}"))
        node.changed()


async def _relay_post(node: Node, item: InboxItem, *, first: bool) -> None:
    """A member's Create (``first``) or Update of a post: relayed when the member's
    copy (embedded, else fetched from its origin: ``_origin_copy``) is ``relayable``."""
    networks = await _networks_of_member(node, item.actor_uri)
    if not networks:
        return
    found = await _origin_copy(node, item.body.get("object"), item.actor_uri)
    if found is None or not relayable(found[1], found[0], item.actor_uri):
        return
    announced = found[0] if first else _inner(item, found[0])
    await _announce(node, item.actor_uri, item.activity_id, networks, announced, found[0],
                    first=first)


async def on_create(node: Node, item: InboxItem) -> None:
    await _relay_post(node, item, first=True)


async def on_update(node: Node, item: InboxItem) -> None:
    await _relay_post(node, item, first=False)


async def on_delete(node: Node, item: InboxItem) -> None:
    object_id = as_id(item.body.get("object"))
    if object_id == item.actor_uri:
        await _member_gone(node, item.actor_uri)
        return
    if object_id is None or not same_origin(object_id, item.actor_uri):
        return
    networks = await _networks_of_member(node, item.actor_uri)
    if networks:
        await _announce(node, item.actor_uri, item.activity_id, networks,
                        _inner(item, object_id), object_id, first=False)


async def on_synced(node: Node, member: str, posts: list[dict[str, Any]], source: str) -> None:
    """Posts peer sync stored for the first time (``Inbound.synced``; outbox_sync.py):
    a member's posts delivered while this node was down are relayed when the
    catch-up finds them, by the same rules as those the inbox gets. The walk
    already checked each against the member's origin (fetched from it, or in its
    outbox there). Only posts published since the member was accepted: a first
    walk (``backfill``) brings history, which the network's followers never
    asked for; a post without a date counts only from a catch-up."""
    memberships = await _memberships(node, member)
    if not memberships:
        return
    for doc in posts:
        object_id = as_id(doc)
        if object_id is None or not relayable(doc, object_id, member):
            continue
        published = published_at(doc)
        networks = [network_id for network_id, accepted_at in memberships
                    if (published >= as_utc(accepted_at) if published is not None
                        else source == "sync")]
        if networks:
            await _announce(node, member, object_id, networks, object_id, object_id,
                            first=True)


async def _member_gone(node: Node, member: str) -> None:
    """A member deleted itself: its memberships end (the federation layer drops
    the follow, docs/ARCHITECTURE.md §3)."""
    async with node.db.write() as session:
        await session.exec(update(NetworkMembership).where(
            col(NetworkMembership.member_uri) == member,
            col(NetworkMembership.state).in_([MembershipState.PENDING,
                                              MembershipState.ACCEPTED]))
            .values(state=MembershipState.LEFT, updated_at=utcnow()))
    node.changed()


def _inner(item: InboxItem, object_id: str) -> dict[str, Any]:
    """The member's activity as the network repeats it: the object by id only, so
    receivers take it from its origin, never from us."""
    return {"id": item.activity_id, "type": item.activity_type, "actor": item.actor_uri,
            "object": object_id, "to": [PUBLIC]}
