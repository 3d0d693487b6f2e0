"""Who the members of a network are, wherever the network lives: where a
``network_only`` campaign is delivered and whose signed GETs may read it
(issue 16, point 2; docs/ARCHITECTURE.md "Campaigns", FEDERATION.md "Campaigns").

A network on this node: its accepted ``network_membership`` rows. A network on
another node: its public ``members`` collection (linked from the network's actor
document, FEDERATION.md "Networks"), walked with the node's signed GETs and
bounded (``MAX_PAGES``, ``MAX_MEMBERS``), kept in ``network_roster`` with the
time it was fetched, so a member's signed GET is checked without a fetch. Every
fetch happens before a write transaction (docs/ARCHITECTURE.md §1).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from node.core.jsonsafe import as_id, as_list
from node.federation.delivery.targets import deliver_to
from node.federation.remote_actors import (
    RemoteError,
    fetch_document,
    get_actor,
    parse_actor,
    same_origin,
)
from node.federation.runtime import Node
from node.networks import members
from node.storage.db import as_utc, dialect_insert, utcnow
from node.storage.models import (
    LocalActor,
    NetworkJoin,
    NetworkMembership,
    NetworkRoster,
    RemoteActor,
)
from node.storage.states import MembershipState

log = logging.getLogger("hambastegi.networks")

# A members collection is walked at most this far: a network (or whoever poses as
# one) cannot make us fetch without end, nor deliver to thousands of inboxes.
MAX_PAGES = 10
MAX_MEMBERS = 500
# A stored roster younger than this is used as it is for reads; delivery and a
# member we do not know yet ask for a fresh one, at most once per this interval.
FRESH_FOR = timedelta(minutes=10)
RETRY_AFTER = timedelta(seconds=30)


class RosterError(Exception):
    """The network's members could not be had; the message is for editors."""


@dataclass(frozen=True)
class Member:
    uri: str
    inbox: str  # where activities to it go: its shared inbox on its own origin, else its inbox
    host: str  # the member's node (host[:port])


@dataclass(frozen=True)
class Roster:
    network_uri: str
    members_url: str
    network_inbox: str | None  # None: the network is on this node
    members: tuple[Member, ...]

    @property
    def local(self) -> bool:
        return self.network_inbox is None

    def hosts(self) -> frozenset[str]:
        """The nodes whose actors may read what is addressed to the members: each
        member's node and the network's own."""
        return frozenset({host_of(self.network_uri), *(m.host for m in self.members)})

    def has(self, actor_uri: str) -> bool:
        return any(m.uri == actor_uri for m in self.members)

    def inboxes(self, own_host: str) -> list[str]:
        """Where an activity to the members goes: each member node's shared inbox
        once, the network actor's inbox, none of this node's own (the network or
        a member here reads the campaign row itself)."""
        out = [m.inbox for m in self.members]
        if self.network_inbox is not None:
            out.append(self.network_inbox)
        return [i for i in dict.fromkeys(out) if host_of(i) != own_host.lower()]


def host_of(uri: str) -> str:
    return urlsplit(uri).netloc.lower()


# --- a network on this node ------------------------------------------------------------


async def _local(session: AsyncSession, node: Node, network_uri: str) -> Roster | None:
    username = node.urls.local_username(network_uri)
    if username is None:
        return None
    found = await members.network_of(session, username)
    if found is None:
        return None
    _, network = found
    rows = (await session.exec(select(NetworkMembership).where(
        NetworkMembership.network_id == network.id,
        NetworkMembership.state == MembershipState.ACCEPTED).order_by(
        col(NetworkMembership.id)).limit(MAX_MEMBERS))).all()
    shared = {a.uri: a.shared_inbox for a in (await session.exec(select(RemoteActor).where(
        col(RemoteActor.uri).in_([r.member_uri for r in rows])))).all()} if rows else {}
    return Roster(network_uri=network_uri, members_url=members.members_url(node, username),
                  network_inbox=None, members=tuple(
                      Member(uri=r.member_uri,
                             inbox=deliver_to(r.member_uri, r.inbox, shared.get(r.member_uri)),
                             host=host_of(r.member_uri)) for r in rows))


# --- a network on another node ---------------------------------------------------------


def _stored(row: NetworkRoster) -> Roster:
    return _remote(row.network_uri, row.members_url, row.inbox, row.members)


def _remote(network_uri: str, members_url: str, network_inbox: str,
            listed: list[dict[str, str]]) -> Roster:
    return Roster(network_uri=network_uri, members_url=members_url,
                  network_inbox=network_inbox, members=tuple(
                      Member(uri=m["uri"], inbox=m["inbox"], host=m["host"]) for m in listed))


async def _stored_row(session: AsyncSession, network_uri: str) -> NetworkRoster | None:
    return (await session.exec(select(NetworkRoster).where(
        NetworkRoster.network_uri == network_uri))).first()


async def _member_ids(node: Node, members_url: str) -> list[str]:
    """The ids listed by an (Ordered)Collection, its pages followed, bounded."""
    found: list[str] = []
    seen = {members_url}
    doc: Any = await fetch_document(node, members_url)
    for _ in range(MAX_PAGES):
        if not isinstance(doc, dict) or len(found) >= MAX_MEMBERS:
            break
        items = [*as_list(doc.get("orderedItems")), *as_list(doc.get("items"))]
        for item in items:
            member = as_id(item)
            if member is not None and member not in found:
                found.append(member)
        # The collection itself links its first page; a page links the next.
        nxt = doc.get("first") if not items and "first" in doc else doc.get("next")
        if isinstance(nxt, dict) and nxt.get("orderedItems", nxt.get("items")) is not None:
            doc = nxt  # an embedded page
            continue
        page = as_id(nxt)
        if page is None or page in seen or not same_origin(page, members_url):
            break
        seen.add(page)
        doc = await fetch_document(node, page)
    return found[:MAX_MEMBERS]


async def fetch(node: Node, network_uri: str) -> Roster:
    """Fetch a remote network's members (network actor, collection pages, each
    member's actor document, cached a day) and keep them. RosterError if the
    network or its collection cannot be had; a member whose actor cannot be
    fetched is left out (logged)."""
    try:
        doc = await fetch_document(node, network_uri)
        network = parse_actor(doc)
        members_url = as_id(doc.get("members"))
        if network.uri != network_uri or members_url is None \
                or not same_origin(members_url, network_uri):
            raise RosterError(f"{network_uri} is not a network (no members collection)")
        ids = await _member_ids(node, members_url)
    except RemoteError as exc:
        raise RosterError(f"cannot fetch the members of {network_uri}: {exc.reason}") from exc
    listed: list[dict[str, str]] = []
    for uri in ids:
        if node.urls.local_username(uri) is not None:
            # One of ours: never fetched over the network, never delivered to (inboxes()).
            listed.append({"uri": uri, "host": host_of(uri), "inbox": node.urls.base + "/inbox"})
            continue
        try:
            actor = await get_actor(node, uri)
        except RemoteError as exc:
            log.info("roster: member actor not fetched", extra={"reason": exc.reason})
            continue
        listed.append({"uri": actor.uri, "host": host_of(actor.uri),
                       "inbox": deliver_to(actor.uri, actor.inbox, actor.shared_inbox)})
    network_inbox = deliver_to(network.uri, network.inbox, network.shared_inbox)
    values: dict[str, Any] = {"network_uri": network_uri, "members_url": members_url,
                              "members": listed, "inbox": network_inbox,
                              "fetched_at": utcnow()}
    # Two processes (the CLI, the server) may fetch the same network at once.
    insert = dialect_insert(node.db.is_sqlite)
    async with node.db.write() as session:
        await session.exec(insert(NetworkRoster).values(**values).on_conflict_do_update(
            index_elements=["network_uri"],
            set_={k: v for k, v in values.items() if k != "network_uri"}))
    return _remote(network_uri, members_url, network_inbox, listed)


# --- what the campaigns ask ------------------------------------------------------------


async def stored(node: Node, network_uri: str) -> Roster | None:
    """What we know without a fetch: a local network's members, or the roster
    last fetched of a remote one (None: never fetched)."""
    async with node.db.read() as session:
        local = await _local(session, node, network_uri)
        if local is not None:
            return local
        row = await _stored_row(session, network_uri)
    return _stored(row) if row is not None else None


async def current(node: Node, network_uri: str, *, max_age: timedelta = FRESH_FOR
                  ) -> Roster:
    """The roster, fetched again when older than ``max_age``; when the fetch fails
    the stored one is used (logged). RosterError when there is none at all."""
    async with node.db.read() as session:
        local = await _local(session, node, network_uri)
        if local is not None:
            return local
        if node.urls.local_username(network_uri) is not None:
            raise RosterError(f"{network_uri} is not a network on this node")
        row = await _stored_row(session, network_uri)
    if row is not None and as_utc(row.fetched_at) > utcnow() - max_age:
        return _stored(row)
    try:
        return await fetch(node, network_uri)
    except RosterError as exc:
        if row is None:
            raise
        log.info("roster: fetch failed, using the stored one", extra={"reason": str(exc)[:100]})
        return _stored(row)


async def group_is_member(node: Node, group: LocalActor, network_uri: str) -> bool:
    """Whether our ``group`` belongs to the network: its Join was accepted (a network
    elsewhere), or its membership row here is (a network on this node)."""
    group_uri = node.urls.actor(group.username)
    async with node.db.read() as session:
        joined = (await session.exec(select(NetworkJoin.id).where(
            NetworkJoin.local_actor_id == group.id, NetworkJoin.network_uri == network_uri,
            NetworkJoin.state == MembershipState.ACCEPTED))).first()
        if joined is not None:
            return True
        local = await _local(session, node, network_uri)
    return local is not None and local.has(group_uri)


async def addressed_networks(node: Node, addresses: list[str]) -> list[str]:
    """Of ``addresses`` (an activity's to/cc), the networks whose ``members``
    collection is named, among those this node hosts or one of its groups was
    accepted into (so an address made up by a stranger costs no fetch)."""
    found: list[str] = []
    async with node.db.read() as session:
        joined = list(dict.fromkeys((await session.exec(select(NetworkJoin.network_uri).where(
            NetworkJoin.state == MembershipState.ACCEPTED))).all()))
        known = {row.network_uri: row.members_url for row in (await session.exec(
            select(NetworkRoster).where(col(NetworkRoster.network_uri).in_(joined)))).all()
        } if joined else {}
        for address in addresses[:20]:
            username = node.urls.local_username(address.removesuffix("/members"))
            if address.endswith("/members") and username is not None:
                if await members.network_of(session, username) is not None:
                    found.append(node.urls.actor(username))
                continue
            for network_uri in joined:
                members_url = known.get(network_uri)
                # Never fetched here: the collection lives on the network's origin.
                if members_url == address or (members_url is None
                                              and same_origin(network_uri, address)):
                    found.append(network_uri)
    return list(dict.fromkeys(found))[:5]
