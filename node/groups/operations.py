"""What editors and admins do, shared by the CLI and the JSON API.

Each function opens its own transaction and wakes the delivery worker when
the work leaves the node, so both front ends behave the same.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlmodel import select

from node.federation import local_actors as groups
from node.federation import processing, publishing
from node.federation.fetch import FetchError
from node.federation.remote_actors import RemoteError, resolve_handle
from node.federation.runtime import Node
from node.storage.models import ApiToken, Follower, Following, LocalActor, LocalObject


class OperationError(ValueError):
    """A request that cannot be done as asked; the message is for the user."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


async def require_group(node: Node, username: str) -> LocalActor:
    async with node.db.read() as session:
        actor = await groups.get_group(session, username)
    if actor is None:
        raise OperationError(f"no group named {username!r}", status=404)
    return actor


async def create_group(node: Node, username: str, *, display_name: str, language: str,
                       summary: str | None = None, manually_approves: bool = False) -> LocalActor:
    try:
        async with node.db.write() as session:
            actor = await groups.create_group(
                session, username, display_name=display_name, language=language,
                summary=summary, manually_approves_followers=manually_approves,
            )
    except groups.GroupError as exc:
        raise OperationError(str(exc)) from exc
    node.doc_cache.clear()
    return actor


async def publish_note(node: Node, username: str, *, text: str,
                       language: str | None = None) -> str:
    actor = await require_group(node, username)
    try:
        if language is not None:
            groups.validate_language(language)
        async with node.db.write() as session:
            obj = await publishing.publish_note(session, actor, node.urls, text=text,
                                                language=language)
    except (publishing.PublishError, groups.GroupError) as exc:
        raise OperationError(str(exc)) from exc
    node.changed()
    return node.urls.object(obj.uuid)


async def _own_object(node: Node, object_uuid: str,
                      allowed_actor: int | None) -> tuple[LocalActor, LocalObject]:
    async with node.db.read() as session:
        obj = await publishing.get_object(session, object_uuid)
        actor = await session.get(LocalActor, obj.local_actor_id) if obj else None
    if obj is None or actor is None or (allowed_actor is not None and actor.id != allowed_actor):
        raise OperationError("no such post", status=404)
    return actor, obj


def object_uuid_from(node: Node, id_or_uuid: str) -> str:
    prefix = node.urls.object("")
    return id_or_uuid[len(prefix):] if id_or_uuid.startswith(prefix) else id_or_uuid


async def edit_note(node: Node, object_id: str, *, text: str,
                    allowed_actor: int | None = None) -> str:
    actor, obj = await _own_object(node, object_uuid_from(node, object_id), allowed_actor)
    try:
        async with node.db.write() as session:
            fresh = await session.get(LocalObject, obj.id)
            assert fresh is not None
            await publishing.edit_note(session, actor, fresh, node.urls, text=text)
    except publishing.PublishError as exc:
        raise OperationError(str(exc)) from exc
    node.changed()
    return node.urls.object(obj.uuid)


async def delete_post(node: Node, object_id: str, *, allowed_actor: int | None = None) -> str:
    actor, obj = await _own_object(node, object_uuid_from(node, object_id), allowed_actor)
    try:
        async with node.db.write() as session:
            fresh = await session.get(LocalObject, obj.id)
            assert fresh is not None
            await publishing.delete_object(session, actor, fresh, node.urls)
    except publishing.PublishError as exc:
        raise OperationError(str(exc), status=410) from exc
    node.changed()
    return node.urls.object(obj.uuid)


async def follow(node: Node, username: str, target: str) -> str:
    """A local group follows a remote actor; returns the Follow's id."""
    actor = await require_group(node, username)
    try:
        remote = await resolve_handle(node, target)
    except (RemoteError, FetchError) as exc:
        raise follow_error(target, exc) from exc
    async with node.db.write() as session:
        existing = (
            await session.exec(select(Following).where(
                Following.local_actor_id == actor.id, Following.target_uri == remote.uri))
        ).first()
        if existing is not None and existing.state != "rejected":
            return existing.follow_activity_id
        activity = await publishing.send_follow(
            session, actor, node.urls, target_uri=remote.uri, inbox=remote.inbox
        )
        follow_id = node.urls.activity(activity.uuid)
        if existing is None:
            existing = Following(local_actor_id=actor.id or 0, target_uri=remote.uri,
                                 follow_activity_id=follow_id)
        existing.follow_activity_id = follow_id
        existing.state = "pending"
        session.add(existing)
    node.changed()
    return follow_id


# What went wrong while resolving a follow target, in words an editor can act on.
_UNREACHABLE = {"dns_failure", "connect_error", "timeout"}
_MISSING_STATUSES = {404, 410}


def follow_error(target: str, exc: RemoteError | FetchError) -> OperationError:
    """Name the cause: the address guard, no such account, unreachable, or a bad answer."""
    fetch = exc if isinstance(exc, FetchError) else exc.__cause__
    prefix = f"cannot follow {target!r}"
    if isinstance(exc, RemoteError) and exc.reason == "bad_handle":
        return OperationError(f"{prefix}: expected @user@host or an actor URL", status=400)
    if isinstance(fetch, FetchError):
        if fetch.reason == "forbidden_address":
            return OperationError(
                f"{prefix}: refused, its host is a private or local address "
                "(this node only contacts public addresses)", status=422)
        if fetch.reason == "bad_scheme":
            return OperationError(f"{prefix}: not an http(s) address", status=400)
        if fetch.reason == "bad_status" and fetch.status in _MISSING_STATUSES:
            return OperationError(f"{prefix}: no such account (the server answered "
                                  f"{fetch.status})", status=404)
        if fetch.reason in _UNREACHABLE:
            return OperationError(f"{prefix}: host unreachable ({fetch.reason})", status=502)
        return OperationError(f"{prefix}: bad answer from the server ({fetch.reason})",
                              status=502)
    return OperationError(f"{prefix}: bad answer from the server ({exc.reason})", status=502)


async def unfollow(node: Node, username: str, target_uri: str) -> None:
    actor = await require_group(node, username)
    async with node.db.write() as session:
        existing = (
            await session.exec(select(Following).where(
                Following.local_actor_id == actor.id, Following.target_uri == target_uri))
        ).first()
        if existing is None:
            raise OperationError("not following that actor", status=404)
        remote_inbox = await _inbox_of(node, target_uri)
        await publishing.send_to(
            session, actor, node.urls, activity_type="Undo",
            obj={"id": existing.follow_activity_id, "type": "Follow",
                 "actor": node.urls.actor(actor.username), "object": target_uri},
            recipient=target_uri, inbox=remote_inbox,
        )
        await session.delete(existing)
    node.changed()


async def _inbox_of(node: Node, actor_uri: str) -> str:
    from node.federation.remote_actors import get_actor

    return (await get_actor(node, actor_uri)).inbox


async def follow_requests(node: Node, username: str) -> list[Follower]:
    actor = await require_group(node, username)
    async with node.db.read() as session:
        rows = await session.exec(select(Follower).where(
            Follower.local_actor_id == actor.id, Follower.state == "pending"))
        return list(rows.all())


async def decide_follow_request(node: Node, username: str, request_id: int, *,
                                accept: bool) -> None:
    actor = await require_group(node, username)
    async with node.db.write() as session:
        follower = await session.get(Follower, request_id)
        if follower is None or follower.local_actor_id != actor.id or follower.state != "pending":
            raise OperationError("no such pending follow request", status=404)
        follow = {"id": follower.follow_activity_id, "type": "Follow",
                  "actor": follower.actor_uri, "object": node.urls.actor(actor.username)}
        if accept:
            follower.state = "accepted"
            session.add(follower)
            await processing.send_accept(session, node, actor, follower, follow)
        else:
            await processing.send_reject(session, node, actor, follower)
            await session.delete(follower)
    node.changed()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_token(node: Node, label: str, username: str | None = None) -> str:
    """A new API token; only its hash is stored, so it is shown once."""
    actor_id = (await require_group(node, username)).id if username else None
    token = "hb_" + secrets.token_urlsafe(32)
    async with node.db.write() as session:
        session.add(ApiToken(token_hash=hash_token(token), label=label[:200],
                             local_actor_id=actor_id))
    return token


async def upload_media(node: Node, data: bytes) -> str:
    """Store a cleaned copy of an image; returns its name for flyers and avatars."""
    import asyncio

    from node.media import uploads
    from node.storage.models import MediaFile

    try:
        name, media_type, width, height, size = await asyncio.to_thread(
            uploads.store, data, node.settings.media_dir)
    except uploads.UploadError as exc:
        raise OperationError(str(exc), status=415 if "accepted" in str(exc) else 400) from exc
    async with node.db.write() as session:
        session.add(MediaFile(name=name, media_type=media_type, width=width, height=height,
                              size=size))
    return name
