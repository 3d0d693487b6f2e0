"""Network operations shared by the CLI and the JSON API (one code path).

Network side: create a network, list applications, accept or reject one,
remove a member, list members. Member side: a local group joins or leaves a
network on any node. Every remote lookup happens before the write
transaction (docs/ARCHITECTURE.md §1, "No network I/O inside a write
transaction"); every activity goes through the fan-out log.

On acceptance the network actor follows the member, so the member's node
delivers its posts to the network like to any follower (node/networks/relay.py);
leaving or removal undoes that follow.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from node.federation import local_actors, publishing
from node.federation.fetch import FetchError
from node.federation.remote_actors import RemoteError, resolve_handle
from node.federation.runtime import Node
from node.groups.errors import OperationError
from node.groups.operations import require_group
from node.networks import directory
from node.storage.db import utcnow
from node.storage.models import (
    Following,
    LocalActor,
    Network,
    NetworkJoin,
    NetworkMembership,
)
from node.storage.states import (
    MEMBERSHIP_REQUEST,
    AlreadyDecided,
    FollowingState,
    MembershipState,
    decide,
)

# Applications waiting for a decision, per network: past this, new applicants
# are not stored (a flood of Joins cannot fill the database or the admins' list).
MAX_PENDING = 500


def members_url(node: Node, username: str) -> str:
    return node.urls.actor(username) + "/members"


async def network_of(session: AsyncSession, username: str) -> tuple[LocalActor, Network] | None:
    """The network named ``username``, or None if there is none (or it is a plain group)."""
    row = (await session.exec(select(LocalActor, Network).join(
        Network, col(Network.actor_id) == col(LocalActor.id)).where(
        LocalActor.username == username))).first()
    return (row[0], row[1]) if row is not None else None


async def require_network(node: Node, username: str) -> tuple[LocalActor, Network]:
    async with node.db.read() as session:
        found = await network_of(session, username)
    if found is None:
        raise OperationError(f"no network named {username!r}", status=404)
    return found


async def create(node: Node, username: str, *, display_name: str, language: str,
                 summary: str | None = None) -> str:
    """A new network actor; returns its id."""
    try:
        async with node.db.write() as session:
            actor = await local_actors.create_group(
                session, username, display_name=display_name, language=language,
                summary=summary)
            session.add(Network(actor_id=actor.id or 0))
    except local_actors.GroupError as exc:
        raise OperationError(str(exc)) from exc
    node.changed()
    return node.urls.actor(username)


# --- network side --------------------------------------------------------------------------


async def applications(node: Node, network: str) -> list[NetworkMembership]:
    """Pending applications: the admins' business only, never served publicly."""
    return await _memberships(node, network, MembershipState.PENDING)


async def members(node: Node, network: str) -> list[NetworkMembership]:
    return await _memberships(node, network, MembershipState.ACCEPTED)


async def _memberships(node: Node, network: str, state: str) -> list[NetworkMembership]:
    _, net = await require_network(node, network)
    async with node.db.read() as session:
        return list((await session.exec(select(NetworkMembership).where(
            NetworkMembership.network_id == net.id, NetworkMembership.state == state)
            .order_by(col(NetworkMembership.id)))).all())


async def pending_count(session: AsyncSession, network_id: int) -> int:
    return int((await session.exec(select(func.count()).select_from(NetworkMembership).where(
        NetworkMembership.network_id == network_id,
        NetworkMembership.state == MembershipState.PENDING))).one())


def join_document(node: Node, membership: NetworkMembership, network_uri: str) -> dict[str, Any]:
    """The member's Join as the network answers it (embedded in Accept/Reject)."""
    return {"id": membership.join_activity_id, "type": "Join",
            "actor": membership.member_uri, "object": network_uri}


async def answer(session: AsyncSession, node: Node, actor: LocalActor,
                 membership: NetworkMembership, *, accept: bool,
                 activity_uuid: str | None = None) -> None:
    """Send Accept/Reject of the member's Join to the member alone."""
    await publishing.send_to(
        session, actor, node.urls, activity_type="Accept" if accept else "Reject",
        obj=join_document(node, membership, node.urls.actor(actor.username)),
        recipient=membership.member_uri, inbox=membership.inbox, activity_uuid=activity_uuid)


async def decide_application(node: Node, network: str, membership_id: int, *,
                             accept: bool) -> NetworkMembership:
    """Accept (the network then follows the member) or reject an application."""
    actor, net = await require_network(node, network)
    async with node.db.write() as session:
        membership = await session.get(NetworkMembership, membership_id)
        if membership is None or membership.network_id != net.id:
            raise OperationError("no such application", status=404)
        try:
            membership.state = decide(MEMBERSHIP_REQUEST, membership.state, accept=accept)
        except AlreadyDecided as exc:
            raise OperationError(str(exc).replace("request", "application"),
                                 status=409) from None
        membership.updated_at = utcnow()
        session.add(membership)
        await answer(session, node, actor, membership, accept=accept)
        if accept:
            await _follow_member(session, node, actor, membership)
    node.changed()
    return membership


async def _follow_member(session: AsyncSession, node: Node, actor: LocalActor,
                         membership: NetworkMembership) -> None:
    """The network follows the member: its node then delivers the member's posts
    here like to any follower, which is how the relay learns of them."""
    following = (await session.exec(select(Following).where(
        Following.local_actor_id == actor.id,
        Following.target_uri == membership.member_uri))).first()
    if following is not None and following.state != FollowingState.REJECTED:
        return
    activity = await publishing.send_follow(session, actor, node.urls,
                                            target_uri=membership.member_uri,
                                            inbox=membership.inbox)
    follow_id = node.urls.activity(activity.uuid)
    if following is None:
        following = Following(local_actor_id=actor.id or 0, target_uri=membership.member_uri,
                              follow_activity_id=follow_id)
    following.follow_activity_id = follow_id
    following.state = FollowingState.PENDING
    session.add(following)


async def unfollow_member(session: AsyncSession, node: Node, actor: LocalActor,
                          member_uri: str, inbox: str) -> None:
    """Undo the network's follow of a former member: its posts stop coming."""
    following = (await session.exec(select(Following).where(
        Following.local_actor_id == actor.id, Following.target_uri == member_uri))).first()
    if following is None:
        return
    await publishing.send_to(
        session, actor, node.urls, activity_type="Undo",
        obj={"id": following.follow_activity_id, "type": "Follow",
             "actor": node.urls.actor(actor.username), "object": member_uri},
        recipient=member_uri, inbox=inbox)
    await session.delete(following)


async def remove(node: Node, network: str, member_uri: str) -> None:
    """Remove a member: ``Remove{object: member, target: members}`` to it, and unfollow."""
    actor, net = await require_network(node, network)
    async with node.db.write() as session:
        membership = (await session.exec(select(NetworkMembership).where(
            NetworkMembership.network_id == net.id,
            NetworkMembership.member_uri == member_uri))).first()
        if membership is None or membership.state != MembershipState.ACCEPTED:
            raise OperationError("not a member of that network", status=404)
        membership.state = MembershipState.REMOVED
        membership.updated_at = utcnow()
        session.add(membership)
        await publishing.record_activity(
            session, actor, node.urls, activity_type="Remove", obj=member_uri,
            to=[member_uri], inboxes=[membership.inbox], in_outbox=False,
            extra={"target": members_url(node, actor.username)})
        await unfollow_member(session, node, actor, member_uri, membership.inbox)
    node.changed()


# --- member side ---------------------------------------------------------------------------


async def join(node: Node, group: str, network: str, entry: directory.Entry | None = None
               ) -> str:
    """A local group applies to a network (handle or URL); returns the Join's id."""
    actor = await require_group(node, group)
    try:
        remote = await resolve_handle(node, network)
    except (RemoteError, FetchError) as exc:
        reason = getattr(exc, "reason", type(exc).__name__)
        raise OperationError(f"cannot find {network!r}: {reason}", status=502) from exc
    if entry is None:
        entry = directory.Entry(languages=list(dict.fromkeys([actor.language, *actor.names])))
    async with node.db.write() as session:
        existing = (await session.exec(select(NetworkJoin).where(
            NetworkJoin.local_actor_id == actor.id,
            NetworkJoin.network_uri == remote.uri))).first()
        if existing is not None and existing.state in (MembershipState.PENDING,
                                                       MembershipState.ACCEPTED):
            return existing.join_activity_id
        activity = await publishing.record_activity(
            session, actor, node.urls, activity_type="Join", obj=remote.uri,
            to=[remote.uri], inboxes=[remote.inbox], in_outbox=False,
            extra=directory.to_join(entry))
        join_id = node.urls.activity(activity.uuid)
        if existing is None:
            existing = NetworkJoin(local_actor_id=actor.id or 0, network_uri=remote.uri,
                                   network_inbox=remote.inbox, join_activity_id=join_id)
        existing.join_activity_id = join_id
        existing.network_inbox = remote.inbox
        existing.state = MembershipState.PENDING
        existing.updated_at = utcnow()
        session.add(existing)
    node.changed()
    return join_id


async def leave(node: Node, group: str, network_uri: str) -> None:
    """The group leaves (or withdraws its application): ``Leave{object: network}``."""
    actor = await require_group(node, group)
    async with node.db.write() as session:
        joined = (await session.exec(select(NetworkJoin).where(
            NetworkJoin.local_actor_id == actor.id,
            NetworkJoin.network_uri == network_uri))).first()
        if joined is None or joined.state not in (MembershipState.PENDING,
                                                  MembershipState.ACCEPTED):
            raise OperationError("not a member of (or applicant to) that network", status=404)
        await publishing.record_activity(
            session, actor, node.urls, activity_type="Leave", obj=network_uri,
            to=[network_uri], inboxes=[joined.network_inbox], in_outbox=False)
        joined.state = MembershipState.LEFT
        joined.updated_at = utcnow()
        session.add(joined)
    node.changed()


async def joined(node: Node, group: str) -> list[NetworkJoin]:
    """The networks a local group applied to, with the state of each."""
    actor = await require_group(node, group)
    async with node.db.read() as session:
        return list((await session.exec(select(NetworkJoin).where(
            NetworkJoin.local_actor_id == actor.id).order_by(col(NetworkJoin.id)))).all())
