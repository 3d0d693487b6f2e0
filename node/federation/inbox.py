"""Inbox routes: verify → store → 202. Processing happens after (processing.py).

Order of checks, cheapest first, so hostile input costs us little and never
causes a fetch: size (413) → signature headers and date (401) → body digest
(401) → JSON shape (400) → key lookup and signature (401) → key owner is the
actor (401) → ids on the actor's origin, ownership (403) → store (idempotent
by activity id) → 202.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from node.calls.events import EventError, check_remote_event
from node.core.jsonsafe import MAX_BODY, JsonError, parse_object
from node.core.metrics import METRICS
from node.federation import local_actors as groups
from node.federation import signatures
from node.federation.remote_actors import RemoteError, lookup_key, same_origin
from node.federation.runtime import Node
from node.storage.db import utcnow
from node.storage.models import InboxItem, RemoteActor, RemoteObject

log = logging.getLogger("hambastegi.inbox")

# A failed check refetches the key at most this often per key: enough for key
# rotation, not a lever for making us fetch on every forged request.
KEY_REFRESH_AFTER = timedelta(seconds=60)


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


def _id(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("id")
    if isinstance(value, str) and value.startswith(("https://", "http://")) and len(value) <= 2048:
        return value
    return None


def target_uri(node: Node, request: Request) -> str:
    """The URI the sender signed: our public base URL, not what a proxy rewrote."""
    # The raw path: Starlette's request.url.path is already percent-decoded,
    # and the sender signed the path as it sent it.
    raw = request.scope.get("raw_path") or request.url.path.encode()
    query = request.url.query
    return node.settings.base_url + raw.decode("latin-1") + (f"?{query}" if query else "")


def check_shape(activity: dict[str, Any]) -> tuple[str, str, str]:
    activity_id = _id(activity.get("id"))
    activity_type = activity.get("type")
    actor_id = _id(activity.get("actor"))
    if activity_id is None:
        raise Rejected(400, "bad_activity", "activity needs an http(s) id")
    if not isinstance(activity_type, str) or not 0 < len(activity_type) <= 64:
        raise Rejected(400, "bad_activity", "activity needs a type")
    if actor_id is None:
        raise Rejected(400, "bad_activity", "activity needs an actor")
    return activity_id, activity_type, actor_id


async def authenticate(
    node: Node, parsed: signatures.ParsedSignature, activity_type: str, actor_id: str,
    activity: dict[str, Any],
) -> RemoteActor | None:
    """Verify the signature; None means 'accept silently, nothing to do'."""
    try:
        actor, key = await lookup_key(node, parsed.key_id)
    except RemoteError as exc:
        if activity_type == "Delete" and _id(activity.get("object")) == actor_id:
            # A deleted actor's key is gone with it; we never knew it, so there
            # is nothing of it to delete. 202 stops the sender retrying.
            return None
        raise Rejected(
            401, "key_unavailable", f"cannot get the signing key ({exc.reason})"
        ) from exc
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
        object_id = _id(obj)
        if object_id is None:
            raise Rejected(400, "bad_activity", f"{activity_type} needs an object with an id")
        if not same_origin(object_id, actor_id):
            raise Rejected(403, "foreign_object", "object id is not on the actor's origin")
        if isinstance(obj, dict) and activity_type != "Delete":
            attributed = obj.get("attributedTo")
            listed = attributed if isinstance(attributed, list) else [attributed]
            owners = {_id(a) for a in listed}
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


def check_content(activity: dict[str, Any], activity_type: str) -> None:
    """Objects we keep must make sense; say why when they do not (never a 500)."""
    obj = activity.get("object")
    if activity_type in {"Create", "Update"} and isinstance(obj, dict) \
            and obj.get("type") == "Event":
        try:
            check_remote_event(obj)
        except EventError as exc:
            raise Rejected(400, "bad_event", str(exc)) from exc


class InboxWriter:
    """Group commit for the inbox: requests arriving together share one INSERT
    and one commit. Each request still gets its 202 only after the commit that
    holds its row (verify → store → 202), and learns whether its activity id
    was new (idempotency)."""

    def __init__(self, node: Node, max_batch: int = 500) -> None:
        self._node = node
        self._max = max_batch
        self._pending: list[tuple[dict[str, Any], asyncio.Future[bool]]] = []
        self._flushing = False

    async def add(self, values: dict[str, Any]) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((values, future))
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        try:
            while self._pending:
                await asyncio.sleep(0)  # one loop turn: let concurrent requests join
                batch, self._pending = self._pending[:self._max], self._pending[self._max:]
                try:
                    inserted = await self._insert([values for values, _ in batch])
                except Exception as exc:  # every waiting request must hear of it
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                seen: set[str] = set()
                for values, future in batch:
                    activity_id = values["activity_id"]
                    future.set_result(activity_id in inserted and activity_id not in seen)
                    seen.add(activity_id)
        finally:
            self._flushing = False

    async def _insert(self, rows: list[dict[str, Any]]) -> set[str]:
        insert = sqlite_insert if self._node.db.is_sqlite else pg_insert
        # One cached statement executed with many parameter sets ("insertmanyvalues"):
        # compiling a fresh multi-row VALUES per batch cost more than the insert.
        stmt = (insert(InboxItem)
                .on_conflict_do_nothing(index_elements=["activity_id"])
                .returning(col(InboxItem.activity_id)))
        async with self._node.db.write() as session:
            result = await session.exec(stmt, params=rows)
            return {row[0] for row in result.all()}


async def store(node: Node, activity: dict[str, Any], activity_id: str, activity_type: str,
                actor_id: str, recipient_id: int | None) -> bool:
    """Insert once; a redelivery of the same id is a no-op (idempotency)."""
    now = utcnow()
    return await node.inbox_writer.add({
        "activity_id": activity_id, "activity_type": activity_type, "actor_uri": actor_id,
        "recipient_id": recipient_id, "body": activity, "state": "pending", "attempts": 0,
        "next_attempt_at": now, "received_at": now,
    })


async def receive(request: Request) -> Response:
    node: Node = request.app.state.node
    username = request.path_params.get("username")
    recipient_id: int | None = None
    try:
        if username is not None:
            async with node.db.read() as session:
                recipient = await groups.get_group(session, username)
            if recipient is None:
                raise Rejected(404, "no_such_inbox", "no such group")
            recipient_id = recipient.id
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
        actor = await authenticate(node, parsed, activity_type, actor_id, activity)
        if actor is None:
            METRICS.inbox("accepted_unknown_delete")
            return Response(status_code=202)
        await check_authority(node, activity, actor_id, activity_id, activity_type)
        check_content(activity, activity_type)
    except Rejected as rejected:
        METRICS.inbox(rejected.reason)
        log.info("inbox rejected", extra={"reason": rejected.reason, "status": rejected.status})
        return JSONResponse({"error": rejected.detail, "reason": rejected.reason},
                            status_code=rejected.status)
    new = await store(node, activity, activity_id, activity_type, actor_id, recipient_id)
    METRICS.inbox("accepted" if new else "duplicate")
    node.inbox_wake.set()
    return Response(status_code=202)


async def receive_instance(request: Request) -> Response:
    """The instance actor's inbox: same checks; nothing is addressed to it yet."""
    return await receive(request)
