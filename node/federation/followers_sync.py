"""FEP-8fcf, followers collection synchronisation, both directions
(FEDERATION.md "Followers synchronisation"; Mastodon does the same).

The partial followers collection of one of our actors for a host is the set of
its accepted followers whose id is on that host (and who are delivered to
there). Its digest is the XOR of the SHA-256 of each id.

- Sending: a delivery of an activity to an actor's followers carries, signed
  (draft-cavage; an RFC 9421 request goes without it),
  ``Collection-Synchronization: collectionId="<followers>",
  url="<followers>_synchronization", digest="…"``.
  Digests are cached per (actor, host) in the process and dropped with every
  other cache when something changed (``Node._drop_cached``; the change counter
  brings other processes' changes), so a delivery costs a dictionary lookup.
- Serving: ``GET /groups/<name>/followers_synchronization`` answers only a
  signed GET, with the followers on the signer's own host; nobody learns more
  than who on their own server follows us.
- Receiving: a signed header whose ``collectionId`` is the sender's followers
  collection and whose ``url`` is on the sender's origin (anything else is
  ignored, FEP-8fcf "On the receiving end") is compared, after the 202, with
  our follows of the sender; on a mismatch we fetch their partial collection
  and heal: our follows they do not list are dropped; a pending follow they list
  is accepted; a local actor they list that does not follow them sends
  ``Undo{Follow}``. One check per sender at a time, at most one a minute.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import orjson
from sqlalchemy import delete
from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from node.core.jsonsafe import as_id, as_list
from node.federation import local_actors, publishing
from node.federation.fetch import FetchError
from node.federation.negotiation import as_response
from node.federation.remote_actors import (
    metered_signer,
    same_origin,
)
from node.federation.runtime import Node
from node.storage.models import Follower, Following, LocalActor, RemoteActor
from node.storage.states import FollowerState, FollowingState

log = logging.getLogger("hambastegi.followers_sync")

HEADER = "Collection-Synchronization"
MAX_HEADER = 4096
MAX_LISTED = 10_000  # ids read from one partial collection
CHECK_SPACING = 60.0  # seconds between two checks of one sender
MAX_CHECKS = 16  # checks in flight in one process
_PARAM = re.compile(r'\s*([A-Za-z]+)\s*=\s*"([^"\\]*)"\s*(?:,|\Z)')
_HEX64 = re.compile(r"[0-9a-f]{64}")


# --- the digest and the header ------------------------------------------------------------


def partial_digest(ids: Iterable[str]) -> str:
    """XOR of the SHA-256 of each id, hex (FEP-8fcf "Partial follower collection digest")."""
    value = 0
    for uri in ids:
        value ^= int.from_bytes(hashlib.sha256(uri.encode()).digest(), "big")
    return value.to_bytes(32, "big").hex()


def header_value(collection_id: str, url: str, digest: str) -> str:
    return f'collectionId="{collection_id}", url="{url}", digest="{digest}"'


def parse_header(value: str) -> dict[str, str] | None:
    """The header's parameters (the Signature header's syntax), or None if malformed."""
    if len(value) > MAX_HEADER:
        return None
    params: dict[str, str] = {}
    position = 0
    while position < len(value):
        found = _PARAM.match(value, position)
        if found is None or found.end() == position:
            return None
        params[found.group(1)] = found.group(2)
        position = found.end()
    return params if {"collectionId", "url", "digest"} <= params.keys() else None


def _netloc(uri: str) -> str:
    try:
        return urlsplit(uri).netloc.lower()
    except ValueError:
        return ""


def sync_url(node: Node, username: str) -> str:
    return node.urls.followers(username) + "_synchronization"


async def _partial(node: Node, actor_id: int, hosts: Sequence[str]) -> dict[str, list[str]]:
    """The partial followers collection of one of our actors for each host."""
    async with node.db.read() as session:
        rows = (await session.exec(
            select(Follower.actor_uri, Follower.host).where(
                col(Follower.local_actor_id) == actor_id,
                col(Follower.state) == FollowerState.ACCEPTED,
                col(Follower.host).in_(list(hosts))))).all()
    partial: dict[str, list[str]] = {host: [] for host in hosts}
    for uri, host in rows:
        if host is not None and _netloc(uri) == host:
            partial[host].append(uri)
    return partial


async def sync_headers(node: Node, actor_id: int, hosts: Sequence[str]
                       ) -> dict[str, dict[str, str]]:
    """Per host, the header a delivery to the actor's followers there carries."""
    await node.changes.sync()  # another process's follower change drops the cache
    cache = node.follower_digests
    missing = [h for h in hosts if (actor_id, h) not in cache]
    if missing:
        async with node.db.read() as session:
            actor = await session.get(LocalActor, actor_id)
        if actor is None:
            return {}
        if len(cache) > 10_000:
            cache.clear()
        for host, ids in (await _partial(node, actor_id, missing)).items():
            cache[(actor_id, host)] = {HEADER: header_value(
                node.urls.followers(actor.username), sync_url(node, actor.username),
                partial_digest(ids))} if ids else {}
    return {h: cache[(actor_id, h)] for h in hosts if cache.get((actor_id, h))}


# --- serving the partial collection -------------------------------------------------------


async def partial_collection(request: Request) -> Response:
    """GET /groups/<name>/followers_synchronization: signed, the signer's host only."""
    node: Node = request.app.state.node
    async with node.db.read() as session:
        group = await local_actors.get_group(session, request.path_params["username"])
    if group is None or group.id is None:
        return JSONResponse({"error": "no such group"}, status_code=404)
    # The one check of signed GETs: key, host, peer policy (imported here: the
    # inbox imports this module, and authorized_fetch imports the inbox).
    from node.federation.authorized_fetch import signed_requester

    signer, _ = await signed_requester(node, request)
    if signer is None:
        return JSONResponse({"error": "a signed GET is required"}, status_code=401)
    host = _netloc(signer)
    items = (await _partial(node, group.id, [host]))[host]
    doc = {"@context": "https://www.w3.org/ns/activitystreams",
           "id": sync_url(node, group.username), "type": "OrderedCollection",
           "totalItems": len(items), "orderedItems": items}
    return as_response(orjson.dumps(doc))


# --- receiving the header -----------------------------------------------------------------


def received(node: Node, headers: Mapping[str, str], covered: Iterable[str],
             actor: RemoteActor) -> None:
    """After a delivery's 202: check its signed header, if any, in the background."""
    value = headers.get(HEADER.lower())
    if value is None or "collection-synchronization" not in covered:
        return
    params = parse_header(value)
    if params is None:
        return
    followers = actor.raw.get("followers") if isinstance(actor.raw, dict) else None
    # FEP-8fcf: the sender's own followers collection, and a url on its own origin;
    # a header naming another host's collection is ignored (we fetch nothing for it).
    if params["collectionId"] != followers or not same_origin(params["url"], actor.uri) \
            or as_id(params["url"]) is None:
        return
    digest = params["digest"].lower()
    if _HEX64.fullmatch(digest) is None:
        return
    checks = node.follower_checks
    now = time.monotonic()
    if actor.uri in checks.running or len(checks.running) >= MAX_CHECKS \
            or now - checks.last.get(actor.uri, -CHECK_SPACING) < CHECK_SPACING:
        return
    if len(checks.last) > 10_000:
        checks.last.clear()
    checks.last[actor.uri] = now
    task = asyncio.create_task(check(node, actor, params["url"], digest))
    checks.running[actor.uri] = task
    task.add_done_callback(lambda _: checks.running.pop(actor.uri, None))


async def _our_follows(node: Node, actor_uri: str) -> list[tuple[Following, str]]:
    async with node.db.read() as session:
        rows = (await session.exec(
            select(Following, LocalActor.username)
            .join(LocalActor, col(LocalActor.id) == col(Following.local_actor_id))
            .where(col(Following.target_uri) == actor_uri))).all()
    return [(row, node.urls.actor(username)) for row, username in rows]


async def check(node: Node, actor: RemoteActor, url: str, digest: str) -> None:
    """Compare, and on a mismatch fetch the partial collection and heal."""
    try:
        follows = await _our_follows(node, actor.uri)
        ours = [uri for row, uri in follows if row.state == FollowingState.ACCEPTED]
        if partial_digest(ours) == digest:
            return
        try:
            fetched = await node.client.fetch_activity(url, signer=metered_signer(node))
        except FetchError as exc:
            log.info("followers synchronisation: fetch failed", extra={"reason": exc.reason})
            return
        if not same_origin(fetched.url, actor.uri):
            return
        listed = _listed(node, fetched.data)
        await heal(node, actor, listed)
    except Exception:  # a background check must never take anything down with it
        log.exception("followers synchronisation failed")


def _listed(node: Node, doc: dict[str, Any]) -> set[str]:
    """Our actors among the collection's items (inline items only, bounded)."""
    items = doc.get("orderedItems", doc.get("items"))
    listed: set[str] = set()
    for item in as_list(items)[:MAX_LISTED]:
        uri = as_id(item)
        if uri is not None and node.urls.local_username(uri) is not None:
            listed.add(uri)
    return listed


async def heal(node: Node, actor: RemoteActor, listed: set[str]) -> None:
    """Make our follows of ``actor`` agree with the followers it lists of ours."""
    async with node.db.write() as session:
        rows = (await session.exec(
            select(Following, LocalActor)
            .join(LocalActor, col(LocalActor.id) == col(Following.local_actor_id))
            .where(col(Following.target_uri) == actor.uri))).all()
        following = {node.urls.actor(local.username) for _, local in rows}
        for row, local in rows:
            uri = node.urls.actor(local.username)
            if uri not in listed and row.state == FollowingState.ACCEPTED:
                await session.exec(delete(Following).where(col(Following.id) == row.id))
                log.info("followers synchronisation: dropped a follow they do not have")
            elif uri in listed and row.state == FollowingState.PENDING:
                row.state = FollowingState.ACCEPTED  # FEP-8fcf: MAY count as accepted
                session.add(row)
        for uri in sorted(listed - following):
            username = node.urls.local_username(uri)
            ours = await local_actors.get_actor(session, username) if username else None
            if ours is None:
                continue
            # They think this actor follows them; it does not: tell them.
            await publishing.send_to(
                session, ours, node.urls, activity_type="Undo",
                obj={"type": "Follow", "actor": uri, "object": actor.uri},
                recipient=actor.uri, inbox=actor.inbox)
            log.info("followers synchronisation: undid a follow we do not have")
    node.changed()
