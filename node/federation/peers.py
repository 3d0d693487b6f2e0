"""Known peers: the remote nodes we deal with, their health and their software
(docs/ARCHITECTURE.md §9; ``hambastegi peers``, ``GET /api/v1/peers``).

A peer is a host (``host[:port]``, as lanes name it) of a remote actor we
stored, a follower, or a delivery lane. Health comes from its lane
(``host_state``: last success, last failure, consecutive failures, last error)
and from ``delivery_failure`` (the first failure since the last success:
"failing since"). Software comes from NodeInfo (``/.well-known/nodeinfo`` →
the 2.1 or 2.0 document on the same host), fetched through the guarded client
(so never from a blocked host), bounded, and cached on the ``peer`` row for
``NODEINFO_TTL``; it is fetched lazily for peers never asked, or for all with
``refresh``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import func
from sqlmodel import col, select

from node.core.jsonsafe import as_list
from node.federation.fetch import FetchError
from node.storage.db import utcnow
from node.storage.models import DeliveryFailure, Follower, HostState, Peer, RemoteActor

if TYPE_CHECKING:
    from node.federation.runtime import Node

log = logging.getLogger("hambastegi.peers")

NODEINFO_TTL = timedelta(days=1)
NODEINFO_RELS = ("http://nodeinfo.diaspora.software/ns/schema/2.1",
                 "http://nodeinfo.diaspora.software/ns/schema/2.0")
MAX_FIELD = 64
# Peers listed at most (the most recently active first would need more joins;
# hosts are listed in name order, and the list says when it was cut).
MAX_PEERS = 5000
# NodeInfo fetches one lazy listing makes; ``refresh`` fetches all, a few at once.
LAZY_FETCHES = 20
FETCH_CONCURRENCY = 4


@dataclass(frozen=True)
class PeerInfo:
    host: str
    software: str | None
    version: str | None
    nodeinfo_fetched_at: datetime | None
    nodeinfo_error: str | None
    last_success_at: datetime | None
    last_failure_at: datetime | None
    consecutive_failures: int
    failing_since: datetime | None
    last_error: str | None
    blocked: bool
    refused: str | None  # why we do not federate with it now (blocked / not allowed)

    def as_json(self) -> dict[str, Any]:
        def when(value: datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {"host": self.host, "software": self.software, "version": self.version,
                "nodeinfo_fetched_at": when(self.nodeinfo_fetched_at),
                "nodeinfo_error": self.nodeinfo_error,
                "last_success_at": when(self.last_success_at),
                "last_failure_at": when(self.last_failure_at),
                "consecutive_failures": self.consecutive_failures,
                "failing_since": when(self.failing_since), "last_error": self.last_error,
                "blocked": self.blocked, "refused": self.refused}


async def known_hosts(node: Node) -> list[str]:
    async with node.db.read() as session:
        hosts: set[str] = set()
        for column in (RemoteActor.domain, HostState.host, Follower.host):
            rows = (await session.exec(select(column).distinct().limit(MAX_PEERS))).all()
            hosts.update(h for h in rows if h)
    hosts.discard(node.settings.host.lower())
    return sorted(hosts)[:MAX_PEERS]


async def list_peers(node: Node, *, refresh: bool = False,
                     lazy_fetches: int = LAZY_FETCHES) -> list[PeerInfo]:
    """Every known peer with its health; NodeInfo fetched for peers never
    asked (at most ``lazy_fetches`` of them) or, with ``refresh``, for all."""
    hosts = await known_hosts(node)
    async with node.db.read() as session:
        peers = {p.host: p for p in (await session.exec(
            select(Peer).where(col(Peer.host).in_(hosts)))).all()}
    stale = utcnow() - NODEINFO_TTL
    due = [h for h in hosts if refresh or h not in peers
           or (peers[h].nodeinfo_fetched_at or stale) <= stale]
    if not refresh:
        due = due[:lazy_fetches]
    if due:
        await refresh_nodeinfo(node, due)
    async with node.db.read() as session:
        peers = {p.host: p for p in (await session.exec(
            select(Peer).where(col(Peer.host).in_(hosts)))).all()}
        lanes = {s.host: s for s in (await session.exec(
            select(HostState).where(col(HostState.host).in_(hosts)))).all()}
        first_failures = dict((await session.exec(
            select(DeliveryFailure.host, func.min(DeliveryFailure.at))
            .where(col(DeliveryFailure.host).in_(hosts)).group_by(DeliveryFailure.host)
        )).all())
    policy = node.peer_policy
    result = []
    for host in hosts:
        peer, lane = peers.get(host), lanes.get(host)
        name = urlsplit("//" + host).hostname or host
        result.append(PeerInfo(
            host=host, software=peer.software if peer else None,
            version=peer.version if peer else None,
            nodeinfo_fetched_at=peer.nodeinfo_fetched_at if peer else None,
            nodeinfo_error=peer.nodeinfo_error if peer else None,
            last_success_at=lane.last_success_at if lane else None,
            last_failure_at=lane.last_failure_at if lane else None,
            consecutive_failures=lane.attempts if lane else 0,
            failing_since=_failing_since(lane, first_failures.get(host)),
            last_error=lane.last_error if lane and lane.attempts else None,
            blocked=policy.is_blocked(name), refused=policy.refusal(name)))
    return result


def _failing_since(lane: HostState | None, first_failure: datetime | None) -> datetime | None:
    """When the current run of failures began, as far as the records tell: the
    first recorded failure after the last success, else the last failed attempt
    of a lane still retrying (its earlier attempts leave no trace of their own)."""
    if lane is None:
        return first_failure
    success = lane.last_success_at
    if first_failure is not None and (success is None or first_failure > success):
        return first_failure
    if lane.attempts and (success is None or (lane.last_failure_at or success) > success):
        return lane.last_failure_at
    return None


async def refresh_nodeinfo(node: Node, hosts: list[str]) -> None:
    """Fetch NodeInfo of ``hosts`` (a few at once) and store what they say."""
    semaphore = asyncio.Semaphore(FETCH_CONCURRENCY)

    async def one(host: str) -> Peer:
        async with semaphore:
            return await fetch_nodeinfo(node, host)

    results = await asyncio.gather(*(one(h) for h in hosts))
    async with node.db.write() as session:
        for fetched in results:
            await session.merge(fetched)


def _text(value: object) -> str | None:
    return value[:MAX_FIELD] if isinstance(value, str) and value.strip() else None


async def fetch_nodeinfo(node: Node, host: str) -> Peer:
    """The ``peer`` row for ``host`` as its NodeInfo says now (not stored)."""
    scheme = "http" if node.settings.allow_private_networks and _is_loopbackish(host) else "https"
    now = utcnow()
    try:
        links = await node.client.fetch_jrd(urlunsplit((scheme, host, "/.well-known/nodeinfo",
                                                        "", "")))
        href = _document_link(links, scheme, host)
        if href is None:
            return Peer(host=host, nodeinfo_fetched_at=now, nodeinfo_error="no_nodeinfo")
        doc = await node.client.fetch_jrd(href)
    except FetchError as exc:
        return Peer(host=host, nodeinfo_fetched_at=now, nodeinfo_error=exc.reason[:MAX_FIELD])
    software = doc.get("software")
    if not isinstance(software, dict):
        return Peer(host=host, nodeinfo_fetched_at=now, nodeinfo_error="bad_nodeinfo")
    return Peer(host=host, software=_text(software.get("name")),
                version=_text(software.get("version")), nodeinfo_fetched_at=now)


def _document_link(links: dict[str, Any], scheme: str, host: str) -> str | None:
    """The 2.1 (else 2.0) document's URL, only on the peer's own origin: a
    NodeInfo index must not send us to fetch from elsewhere."""
    found: dict[str, str] = {}
    for link in as_list(links.get("links"))[:20]:
        if isinstance(link, dict) and link.get("rel") in NODEINFO_RELS:
            href = link.get("href")
            if isinstance(href, str) and len(href) <= 2048:
                found.setdefault(link["rel"], href)
    for rel in NODEINFO_RELS:
        href = found.get(rel)
        if href is None:
            continue
        parts = urlsplit(href)
        if parts.scheme == scheme and parts.netloc.lower() == host.lower():
            return href
    return None


def _is_loopbackish(host: str) -> bool:
    name = urlsplit("//" + host).hostname or ""
    return name in ("localhost",) or name.replace(".", "").isdigit() or ":" in name
