"""Inbound membership activities (registered in node/inbound.py).

Network side: ``on_join`` (an application), ``on_leave``. Member side:
``on_accept_join`` / ``on_reject_join`` (the network's answer) and
``on_remove``. Only the network actor's answer to exactly our pending Join
counts: a forged Accept (another actor, another Join, a Join already
answered) changes nothing. Handlers are idempotent (docs/ARCHITECTURE.md §3).
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from sqlmodel import select

from node.core.jsonsafe import as_id
from node.federation.dispatch import emission_uuid
from node.federation.local_actors import get_group
from node.federation.remote_actors import RemoteError, get_actor, same_origin
from node.federation.runtime import Node
from node.networks import directory, members
from node.storage.db import utcnow
from node.storage.models import InboxItem, NetworkJoin, NetworkMembership
from node.storage.states import MEMBERSHIP_REQUEST, AlreadyDecided, MembershipState, decide

log = logging.getLogger("hambastegi.networks")

# Actor types that may be members: groups and organisations, not persons.
MEMBER_TYPES = frozenset({"Group", "Organization"})


# --- network side ----------------------------------------------------------------------


async def on_join(node: Node, item: InboxItem) -> None:
    """A group applies. Stored pending for the admins; a repeated Join updates the
    same application; a decision stands (a rejected or removed group asking again
    gets Reject, an accepted one Accept again)."""
    username = node.urls.local_username(as_id(item.body.get("object")))
    if username is None:
        return
    async with node.db.read() as session:
        found = await members.network_of(session, username)
    if found is None:
        return  # not a network: a Join of an event, or of a plain group
    try:
        entry = directory.from_join(item.body)
    except directory.DirectoryError as exc:
        log.info("join refused", extra={"reason": str(exc)[:100]})
        return
    try:
        applicant = await get_actor(node, item.actor_uri)
    except RemoteError as exc:
        log.info("join from an unusable actor", extra={"reason": exc.reason})
        return
    if applicant.actor_type not in MEMBER_TYPES:
        return
    actor, network = found
    async with node.db.write() as session:
        membership = (await session.exec(select(NetworkMembership).where(
            NetworkMembership.network_id == network.id,
            NetworkMembership.member_uri == applicant.uri))).first()
        state = membership.state if membership is not None else None
        if state in (MembershipState.REJECTED, MembershipState.REMOVED,
                     MembershipState.ACCEPTED) and membership is not None:
            membership.join_activity_id = item.activity_id
            session.add(membership)
            await members.answer(session, node, actor, membership,
                                 accept=state == MembershipState.ACCEPTED,
                                 activity_uuid=emission_uuid(item, "network-answer"))
            return
        if state != MembershipState.PENDING and await members.pending_count(
                session, network.id or 0) >= members.MAX_PENDING:
            log.warning("join not stored: too many pending applications",
                        extra={"network": username})
            return
        if membership is None:
            membership = NetworkMembership(network_id=network.id or 0,
                                           member_uri=applicant.uri, inbox=applicant.inbox,
                                           join_activity_id=item.activity_id, name="",
                                           node_host="")
        membership.inbox = applicant.inbox
        membership.join_activity_id = item.activity_id
        membership.state = MembershipState.PENDING
        membership.name = directory.display_name(applicant.display_name,
                                                 applicant.username or applicant.uri)
        membership.city, membership.country = entry.city, entry.country
        membership.languages = entry.languages
        membership.node_host = (urlsplit(applicant.uri).netloc or "")[:256]
        membership.updated_at = utcnow()
        session.add(membership)


async def on_leave(node: Node, item: InboxItem) -> None:
    """A member leaves (or an applicant withdraws): relaying stops, the network unfollows."""
    username = node.urls.local_username(as_id(item.body.get("object")))
    if username is None:
        return
    async with node.db.write() as session:
        found = await members.network_of(session, username)
        if found is None:
            return
        actor, network = found
        membership = (await session.exec(select(NetworkMembership).where(
            NetworkMembership.network_id == network.id,
            NetworkMembership.member_uri == item.actor_uri))).first()
        if membership is None or membership.state not in (MembershipState.PENDING,
                                                          MembershipState.ACCEPTED):
            return
        membership.state = MembershipState.LEFT
        membership.updated_at = utcnow()
        session.add(membership)
        await members.unfollow_member(session, node, actor, membership.member_uri,
                                      membership.inbox)
    node.changed()


# --- member side -----------------------------------------------------------------------


async def _answer(node: Node, item: InboxItem, *, accept: bool) -> None:
    inner = item.body.get("object")
    if isinstance(inner, dict) and inner.get("type") not in (None, "Join"):
        return
    join_id = as_id(inner)
    if join_id is None:
        return
    async with node.db.write() as session:
        joined = (await session.exec(select(NetworkJoin).where(
            NetworkJoin.join_activity_id == join_id))).first()
        # Only the network we asked, only for the Join we sent, only while pending.
        if joined is None or joined.network_uri != item.actor_uri:
            return
        try:
            joined.state = decide(MEMBERSHIP_REQUEST, joined.state, accept=accept)
        except AlreadyDecided:
            return
        joined.updated_at = utcnow()
        session.add(joined)
    node.changed()


async def on_accept_join(node: Node, item: InboxItem) -> None:
    await _answer(node, item, accept=True)


async def on_reject_join(node: Node, item: InboxItem) -> None:
    await _answer(node, item, accept=False)


async def on_remove(node: Node, item: InboxItem) -> None:
    """The network removed one of our groups: ``Remove{object: group, target:
    <network>/members}``, only from the network the group had joined."""
    group = node.urls.local_username(as_id(item.body.get("object")))
    target = as_id(item.body.get("target"))
    if group is None or target is None or not same_origin(target, item.actor_uri):
        return
    async with node.db.write() as session:
        actor = await get_group(session, group)
        if actor is None:
            return
        joined = (await session.exec(select(NetworkJoin).where(
            NetworkJoin.local_actor_id == actor.id,
            NetworkJoin.network_uri == item.actor_uri))).first()
        if joined is None or joined.state != MembershipState.ACCEPTED:
            return
        joined.state = MembershipState.REMOVED
        joined.updated_at = utcnow()
        session.add(joined)
    node.changed()
