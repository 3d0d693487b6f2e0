"""Inbox routes: verify → store → 202. Processing happens after, from the
inbox queue (inbox_queue.py; docs/ARCHITECTURE.md §3 walks the whole path).

Order of checks, cheapest first, so hostile input costs us little and never
causes a fetch: size (413) → signature headers and date (401) → body digest
(401) → JSON shape (400) → peer policy: blocked or unlisted domain (403) →
key lookup and signature (401; at most ``remote_actors.FETCHES_PER_REQUEST``
outbound GETs) → key owner is the actor
(401) → ids on the actor's origin, ownership (403) → content of kept objects
(400) → store (idempotent by activity id) → 202. A database that cannot take
the row now (locked, restarting, unreachable) is a 503 with Retry-After: the
sender retries, and nothing is answered 202 that is not stored.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel import select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from node.core.jsonsafe import MAX_BODY, JsonError, as_id, parse_object
from node.core.metrics import METRICS
from node.federation import followers_sync, signatures
from node.federation import local_actors as groups
from node.federation.dispatch import ContentError
from node.federation.inbox_queue import new_item
from node.federation.remote_actors import (
    RemoteError,
    actor_values,
    fetch_budget,
    lookup_key,
    same_origin,
)
from node.federation.runtime import Node
from node.storage.db import utcnow
from node.storage.models import RemoteActor, RemoteObject

log = logging.getLogger("hambastegi.inbox")

# A failed check refetches the key at most this often per key: enough for key
# rotation, not a lever for making us fetch on every forged request.
KEY_REFRESH_AFTER = timedelta(seconds=60)
# What a 503 asks the sender to wait: a locked or restarting database is
# usually back within seconds, and senders back off further on their own.
RETRY_AFTER_SECONDS = 30
# How long a request waits for its row to be committed. Senders give up after
# about ten seconds (and then retry as after a 503): answer before they do. A
# row committed after we gave up is no loss: the sender's retry is a duplicate.
STORE_TIMEOUT_SECONDS = 5.0
# Errors that mean "the database cannot do it now", not "this request is bad":
# SQLite's "database is locked" past the busy timeout and PostgreSQL's
# dropped connections and failovers are OperationalError (or a DBAPIError
# marked as a lost connection); a full pool is sqlalchemy's TimeoutError.
DATABASE_BUSY = (OperationalError, InterfaceError, PoolTimeout, TimeoutError, ConnectionError)


class Rejected(Exception):
    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail


class BodyTooLarge(Exception):
    pass


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """Read at most ``limit`` bytes, whatever Content-Length claims."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def target_uri(node: Node, request: Request) -> str:
    """The URI the sender signed: our public base URL, not what a proxy rewrote."""
    # The raw path: Starlette's request.url.path is already percent-decoded,
    # and the sender signed the path as it sent it.
    raw = request.scope.get("raw_path") or request.url.path.encode()
    query = request.url.query
    return node.settings.base_url + raw.decode("latin-1") + (f"?{query}" if query else "")


def check_shape(activity: dict[str, Any]) -> tuple[str, str, str]:
    activity_id = as_id(activity.get("id"))
    activity_type = activity.get("type")
    actor_id = as_id(activity.get("actor"))
    if activity_id is None:
        raise Rejected(400, "bad_activity", "activity needs an http(s) id")
    if not isinstance(activity_type, str) or not 0 < len(activity_type) <= 64:
        raise Rejected(400, "bad_activity", "activity needs a type")
    if actor_id is None:
        raise Rejected(400, "bad_activity", "activity needs an actor")
    return activity_id, activity_type, actor_id


async def check_peer_policy(node: Node, actor_id: str, key_id: str, *, synced: bool) -> None:
    """A blocked (or, in allowlist mode, unlisted) domain's activity is refused
    before its key is looked up, so it costs no fetch and stores nothing. 403,
    as GoToSocial answers blocked domains: a permanent failure for the sender
    (Mastodon retries only 401, 408, 429 and 5xx), so it stops trying
    (docs/ARCHITECTURE.md §9; FEDERATION.md, peer policy). ``synced``: the
    change counter was read for this request already (a group inbox's
    recipient lookup), so only a reload of stale rules may be needed."""
    if synced:
        await node.peer_policy.refresh(node.db)
        policy = node.peer_policy
    else:
        policy = await node.current_policy()
    refused = policy.refusal_uri(actor_id) or policy.refusal_uri(key_id)
    if refused is not None:
        raise Rejected(403, refused, "this node does not federate with that domain")


async def authenticate(
    node: Node, parsed: signatures.ParsedSignature, activity_type: str, actor_id: str,
    activity: dict[str, Any],
) -> RemoteActor | None:
    """Verify the signature; None means 'accept silently, nothing to do'."""
    try:
        actor, key = await lookup_key(node, parsed.key_id)
    except RemoteError as exc:
        if activity_type == "Delete" and as_id(activity.get("object")) == actor_id:
            # A deleted actor's key is gone with it; we never knew it, so there
            # is nothing of it to delete. 202 stops the sender retrying.
            return None
        # unknown_key: the actor does not list it (the sender should sign
        # with a key it publishes); anything else: we could not get it now.
        reason = exc.reason if exc.reason in ("unknown_key", "bad_key") else "key_unavailable"
        raise Rejected(401, reason, f"cannot get the signing key ({exc.reason})") from exc
    try:
        signatures.verify_signature(parsed, key)
    except signatures.SignatureError as first:
        if actor.fetched_at > utcnow() - KEY_REFRESH_AFTER:
            raise Rejected(401, first.reason, "signature does not verify") from first
        try:
            actor, key = await lookup_key(node, parsed.key_id, refresh=True)
            signatures.verify_signature(parsed, key)
        except (RemoteError, signatures.SignatureError) as exc:
            reason = getattr(exc, "reason", "bad_signature")
            raise Rejected(401, reason, "signature does not verify") from exc
    if actor.uri != actor_id:
        raise Rejected(401, "key_owner_mismatch", "the signing key does not belong to the actor")
    return actor


async def check_authority(node: Node, activity: dict[str, Any], actor_id: str, activity_id: str,
                          activity_type: str) -> None:
    """Ids must be on the actor's origin; Update/Delete only of what it owns."""
    if not same_origin(activity_id, actor_id):
        raise Rejected(403, "foreign_id", "activity id is not on the actor's origin")
    obj = activity.get("object")
    if activity_type in {"Create", "Update", "Delete"}:
        object_id = as_id(obj)
        if object_id is None:
            raise Rejected(400, "bad_activity", f"{activity_type} needs an object with an id")
        if not same_origin(object_id, actor_id):
            raise Rejected(403, "foreign_object", "object id is not on the actor's origin")
        if isinstance(obj, dict) and activity_type != "Delete":
            attributed = obj.get("attributedTo")
            listed = attributed if isinstance(attributed, list) else [attributed]
            owners = {as_id(a) for a in listed}
            is_actor_doc = object_id == actor_id
            if attributed is not None and actor_id not in owners and not is_actor_doc:
                raise Rejected(403, "not_owner", "object is attributed to someone else")
        if activity_type in {"Update", "Delete"} and object_id != actor_id:
            async with node.db.read() as session:
                stored = (
                    await session.exec(select(RemoteObject).where(RemoteObject.uri == object_id))
                ).first()
                other_actor = (
                    await session.exec(select(RemoteActor).where(RemoteActor.uri == object_id))
                ).first()
            if (stored is not None and stored.actor_uri != actor_id) or other_actor is not None:
                raise Rejected(403, "not_owner", "the actor does not own that object")


def check_content(node: Node, activity: dict[str, Any], activity_type: str) -> None:
    """Objects we keep must make sense; say why when they do not (never a 500).
    The checks per object type come from above (node/inbound.py)."""
    try:
        node.inbound.check_content(activity, activity_type)
    except ContentError as exc:
        raise Rejected(400, exc.reason, str(exc)) from exc


async def store(node: Node, activity: dict[str, Any], activity_id: str, activity_type: str,
                actor: RemoteActor, recipient_id: int | None) -> bool:
    """Insert once; a redelivery of the same id is a no-op (idempotency).
    An actor fetched for this request (not stored yet: ``id`` None) is stored
    in the same commit. Raises TimeoutError when the database does not take
    the row in time."""
    first_contact = actor_values(actor) if actor.id is None else None
    async with asyncio.timeout(STORE_TIMEOUT_SECONDS):
        new = await node.inbox_writer.add(
            new_item(activity, activity_id, activity_type, actor.uri, recipient_id),
            first_contact)
    if first_contact is not None:
        # The cached actor is stored now: later requests need not bring it.
        actor.id = first_contact.get("id")
    return new


async def recipient(node: Node, username: str) -> int | None:
    """The row id of the group whose inbox this is (None: no such group).

    Cached (node.group_lookups) like keys: after the change counter is read
    (ChangeWatcher, docs/ARCHITECTURE.md §1), so a group created or removed
    by another process is seen by the next request. Concurrent requests share
    one counter read, and it needs none while nothing was committed."""
    await node.changes.sync()

    async def read() -> int | None:
        async with node.db.read() as session:
            group = await groups.get_group(session, username)
        return group.id if group is not None else None

    return await node.group_lookups.lookup(username, read)


def database_busy(exc: BaseException) -> bool:
    if isinstance(exc, DATABASE_BUSY):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


async def receive(request: Request) -> Response:
    try:
        with fetch_budget():
            return await _receive(request)
    except Exception as exc:
        if not database_busy(exc):
            raise
        # Nothing of this request was answered 202, so nothing is lost: the
        # sender retries later, as a 503 with Retry-After asks.
        METRICS.inbox("database_busy")
        log.warning("inbox: database busy, asked the sender to retry",
                    extra={"error": type(exc).__name__})
        return JSONResponse({"error": "the database is busy, retry later",
                             "reason": "database_busy"}, status_code=503,
                            headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


async def _receive(request: Request) -> Response:
    node: Node = request.app.state.node
    username = request.path_params.get("username")
    recipient_id: int | None = None
    try:
        if username is not None:
            recipient_id = await recipient(node, username)
            if recipient_id is None:
                raise Rejected(404, "no_such_inbox", "no such group")
        try:
            body = await read_body(request)
        except BodyTooLarge:
            raise Rejected(413, "too_large", f"body over {MAX_BODY} bytes") from None
        try:
            parsed = signatures.parse_request_signature(
                method="POST", target_uri=target_uri(node, request),
                headers=request.headers, now=utcnow(), require_digest=True,
            )
            signatures.verify_body_digest(request.headers, body)
        except signatures.SignatureError as exc:
            raise Rejected(401, exc.reason, "request signature refused") from exc
        host = request.headers.get("host", "").lower()
        if parsed.scheme == "cavage" and host != node.settings.host.lower():
            # The signed Host must be ours, or a request signed for another
            # server could be replayed here.
            raise Rejected(401, "target_mismatch", "signed for another host")
        try:
            activity = parse_object(body)
        except JsonError as exc:
            raise Rejected(400, "bad_json", str(exc)) from exc
        activity_id, activity_type, actor_id = check_shape(activity)
        await check_peer_policy(node, actor_id, parsed.key_id, synced=username is not None)
        actor = await authenticate(node, parsed, activity_type, actor_id, activity)
        if actor is None:
            METRICS.inbox("accepted_unknown_delete")
            return Response(status_code=202)
        await check_authority(node, activity, actor_id, activity_id, activity_type)
        check_content(node, activity, activity_type)
    except Rejected as rejected:
        METRICS.inbox(rejected.reason)
        log.info("inbox rejected", extra={"reason": rejected.reason, "status": rejected.status})
        return JSONResponse({"error": rejected.detail, "reason": rejected.reason},
                            status_code=rejected.status)
    new = await store(node, activity, activity_id, activity_type, actor, recipient_id)
    METRICS.inbox("accepted" if new else "duplicate")
    node.inbox_wake.set()
    # FEP-8fcf: a signed Collection-Synchronization header is checked after the 202.
    followers_sync.received(node, request.headers, parsed.covered, actor)
    return Response(status_code=202)


async def receive_instance(request: Request) -> Response:
    """The instance actor's inbox: same checks; nothing is addressed to it yet."""
    return await receive(request)
