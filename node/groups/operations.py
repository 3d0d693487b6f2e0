"""What editors and admins do, shared by the CLI and the JSON API.

Each function opens its own transaction and wakes the delivery worker when
the work leaves the node, so both front ends behave the same.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from node.federation import delivery, processing, publishing
from node.federation import local_actors as groups
from node.federation.fetch import FetchError
from node.federation.remote_actors import RemoteError, resolve_handle
from node.federation.runtime import Node
from node.federation.vocabulary import audience
from node.groups.errors import OperationError as OperationError  # re-exported: its old home
from node.storage.db import utcnow
from node.storage.models import (
    ApiToken,
    Follower,
    Following,
    LocalActor,
    LocalObject,
    MediaFile,
    RemoteActor,
    RemoteObject,
)
from node.storage.states import FOLLOW_REQUEST, AlreadyDecided, decide

log = logging.getLogger("hambastegi")



async def find_remote_group(node: Node, target: str) -> RemoteActor:
    """A group on another node by handle or URL, for an editor's command (invite,
    remove): every failure to find it becomes an OperationError (502) naming why."""
    try:
        return await resolve_handle(node, target)
    except Exception as exc:  # RemoteError and FetchError carry a reason; any is the editor's
        reason = getattr(exc, "reason", type(exc).__name__)
        raise OperationError(f"cannot find {target!r}: {reason}", status=502) from exc


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


async def resolve_mentions(node: Node, text: str) -> list[publishing.Mention]:
    """WebFinger every @user@host in ``text``, concurrently and outside any write
    transaction. A handle that does not resolve stays plain text."""
    import asyncio

    from node.core.text import mentions_in

    async def one(handle: str) -> publishing.Mention | None:
        user, _, host = handle.partition("@")
        if host == node.settings.host.lower():
            async with node.db.read() as session:
                local = await groups.get_group(session, user)
            uri = node.urls.actor(user)
            return publishing.Mention(handle, uri, uri) if local is not None else None
        try:
            remote = await resolve_handle(node, handle)
        except Exception as exc:  # RemoteError and FetchError carry a reason
            log.info("mention not resolved", extra={
                "handle_host": host, "reason": getattr(exc, "reason", type(exc).__name__)})
            return None
        return publishing.Mention(handle, remote.uri, remote.url or remote.uri)

    found = await asyncio.gather(*(one(handle) for handle in mentions_in(text)))
    return [mention for mention in found if mention is not None]


async def publish_note(node: Node, username: str, *, text: str,
                       language: str | None = None, in_reply_to: str | None = None) -> str:
    """A Note of the group; ``in_reply_to``: the id of the post it answers (a thread)."""
    actor = await require_group(node, username)
    mentions = await resolve_mentions(node, text)
    try:
        if language is not None:
            groups.validate_language(language)
        async with node.db.write() as session:
            obj = await publishing.publish_note(session, actor, node.urls, text=text,
                                                language=language, mentions=mentions,
                                                in_reply_to=in_reply_to)
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
    if obj.object_type != "Note":
        # An Event's texts are per language and its details live elsewhere:
        # replacing its content with one text would federate the damage.
        raise OperationError(f"that is an {obj.object_type}, not a note; change a call with "
                             "`hambastegi edit call ID` (PUT /api/v1/events/{uuid})")
    mentions = await resolve_mentions(node, text)
    try:
        async with node.db.write() as session:
            fresh = await session.get(LocalObject, obj.id)
            assert fresh is not None
            await publishing.edit_note(session, actor, fresh, node.urls, text=text,
                                       mentions=mentions)
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
# Peer policy (federation/policy.py): the guarded client refused the host itself.
_POLICY_REFUSALS = {"blocked_domain": "its domain is blocked on this node",
                    "not_allowed": "its domain is not on this node's allowlist "
                                   "(HAMBASTEGI_FEDERATION=allowlist; see `hambastegi allow`)"}


def follow_error(target: str, exc: RemoteError | FetchError) -> OperationError:
    """Name the cause: the address guard, no such account, unreachable, or a bad answer."""
    fetch = exc if isinstance(exc, FetchError) else exc.__cause__
    prefix = f"cannot follow {target!r}"
    if isinstance(exc, RemoteError) and exc.reason == "bad_handle":
        return OperationError(f"{prefix}: expected @user@host or an actor URL", status=400)
    if isinstance(fetch, FetchError):
        if fetch.reason in _POLICY_REFUSALS:
            return OperationError(f"{prefix}: {_POLICY_REFUSALS[fetch.reason]}", status=403)
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
    if await _following(node, actor, target_uri) is None:
        raise OperationError("not following that actor", status=404)
    # The remote inbox is looked up before the transaction: a fetch inside it
    # would hold SQLite's only write lock, and with it every other write of the
    # process, for as long as the remote takes.
    remote_inbox = await _inbox_of(node, target_uri)
    async with node.db.write() as session:
        existing = (
            await session.exec(select(Following).where(
                Following.local_actor_id == actor.id, Following.target_uri == target_uri))
        ).first()
        if existing is None:  # unfollowed meanwhile, by another request
            raise OperationError("not following that actor", status=404)
        await publishing.send_to(
            session, actor, node.urls, activity_type="Undo",
            obj={"id": existing.follow_activity_id, "type": "Follow",
                 "actor": node.urls.actor(actor.username), "object": target_uri},
            recipient=target_uri, inbox=remote_inbox,
        )
        await session.delete(existing)
    node.changed()


async def _following(node: Node, actor: LocalActor, target_uri: str) -> Following | None:
    async with node.db.read() as session:
        return (
            await session.exec(select(Following).where(
                Following.local_actor_id == actor.id, Following.target_uri == target_uri))
        ).first()


async def _inbox_of(node: Node, actor_uri: str) -> str:
    """The actor's inbox: refreshed if the cache is stale, else the cached one (an
    Undo to a stale but likely still valid inbox beats none when the remote is
    down)."""
    from node.federation.remote_actors import RemoteError, get_actor

    try:
        return (await get_actor(node, actor_uri)).inbox
    except RemoteError as exc:
        async with node.db.read() as session:
            cached = (await session.exec(select(RemoteActor).where(
                RemoteActor.uri == actor_uri))).first()
        if cached is None:
            raise OperationError(f"cannot reach {actor_uri!r}: {exc.reason}",
                                 status=502) from exc
        return cached.inbox


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
        if follower is None or follower.local_actor_id != actor.id:
            raise OperationError("no such pending follow request", status=404)
        try:
            decided = decide(FOLLOW_REQUEST, follower.state, accept=accept)
        except AlreadyDecided:
            raise OperationError("no such pending follow request", status=404) from None
        follow = {"id": follower.follow_activity_id, "type": "Follow",
                  "actor": follower.actor_uri, "object": node.urls.actor(actor.username)}
        if accept:
            follower.state = decided
            await delivery.prepare_follower(session, follower)
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


async def upload_media(node: Node, data: bytes, *, group: str | None = None,
                       focus: tuple[float, float] | None = None) -> str:
    """Store a cleaned copy of an image; returns its name for flyers and avatars.

    With ``group`` the upload belongs to that group: no other group may use it."""
    original, _ = await upload_media_files(node, data, group=group, focus=focus)
    return original.name


async def upload_media_files(node: Node, data: bytes, *, group: str | None = None,
                             focus: tuple[float, float] | None = None,
                             ) -> tuple[MediaFile, list[MediaFile]]:
    """``upload_media``, returning the original's row and its variants' rows."""
    from node.media import uploads

    owner = (await require_group(node, group)).id if group is not None else None

    try:
        stored = await uploads.store_bounded(data, node.settings.media_dir)
    except uploads.UploadBusy as exc:
        raise OperationError(str(exc), status=503) from exc
    except uploads.UnsupportedMedia as exc:
        raise OperationError(str(exc), status=415) from exc
    except uploads.UploadError as exc:
        raise OperationError(str(exc), status=400) from exc
    async with node.db.write() as session:
        original = MediaFile(name=stored.name, media_type=stored.media_type,
                             width=stored.width, height=stored.height, size=stored.size,
                             local_actor_id=owner, blurhash=stored.blurhash,
                             focus_x=focus[0] if focus else None,
                             focus_y=focus[1] if focus else None)
        session.add(original)
        await session.flush()
        variants = [MediaFile(name=v.name, media_type=v.media_type, width=v.width,
                              height=v.height, size=v.size, local_actor_id=owner,
                              variant_of=original.id) for v in stored.variants]
        session.add_all(variants)
    return original, variants


async def usable_media(session: AsyncSession, name: str, actor: LocalActor) -> MediaFile:
    """The upload ``name`` if ``actor`` may use it (flyer, photo, avatar, header).

    An upload belongs to the group that uploaded it. One without an owner
    (uploaded before owners were recorded, or by an admin without a group) is
    claimed by the first group that uses it, so it never serves two groups."""
    media = (await session.exec(select(MediaFile).where(
        MediaFile.name == name, col(MediaFile.variant_of).is_(None)))).first()
    if media is None or (media.local_actor_id is not None
                         and media.local_actor_id != actor.id):
        # The same answer for "missing" and "someone else's": names stay secret.
        raise OperationError(f"no uploaded image named {name!r} for this group "
                             f"(upload it with `hambastegi media upload FILE --group "
                             f"{actor.username}`)")
    if media.local_actor_id is None:
        media.local_actor_id = actor.id
        session.add(media)
    return media


# --- self-management: profile, pinned posts, replies -------------------------------


async def edit_group(node: Node, username: str, changes: dict[str, Any]) -> LocalActor:
    """Change a group's profile and federate an ``Update`` of the actor to its followers.

    ``changes`` may hold display_name, summary, language, avatar and header
    (names of the group's own uploads), links ([{"name", "url"}], shown by
    Mastodon as profile fields), manually_approves_followers, discoverable,
    indexable. Anything else is refused."""
    from node.core.text import URL_RE
    from node.federation.vocabulary import actor_document

    unknown = set(changes) - GROUP_FIELDS
    if unknown:
        raise OperationError(f"unknown field(s): {', '.join(sorted(unknown))}")
    actor = await require_group(node, username)
    try:
        async with node.db.write() as session:
            fresh = await session.get(LocalActor, actor.id)
            assert fresh is not None
            if "language" in changes:
                fresh.language = groups.validate_language(_str(changes, "language"))
            if "display_name" in changes:
                fresh.display_name = groups.validate_display_name(_str(changes, "display_name"))
                fresh.names = {**fresh.names, fresh.language: fresh.display_name}
            if "summary" in changes:
                summary = _str(changes, "summary")
                rest = {k: v for k, v in fresh.summaries.items() if k != fresh.language}
                fresh.summaries = ({fresh.language: groups.validate_summary(summary), **rest}
                                   if summary.strip() else rest)
            for field, column in (("avatar", "icon_path"), ("header", "image_path")):
                if field in changes:
                    name = _str(changes, field)
                    path = None
                    if name:
                        media = await usable_media(session, name, fresh)
                        if media.media_type not in ("image/png", "image/jpeg"):
                            raise OperationError(f"{field} must be a PNG or JPEG upload")
                        path = f"uploads/{await _shown_as(session, media, field)}"
                    setattr(fresh, column, path)
            if "links" in changes:
                links = changes["links"]
                if not isinstance(links, list) or len(links) > MAX_LINKS:
                    raise OperationError(f"links must be a list of at most {MAX_LINKS}")
                clean = []
                for link in links:
                    if (not isinstance(link, dict) or not isinstance(link.get("name"), str)
                            or not isinstance(link.get("url"), str)
                            or not 1 <= len(link["name"].strip()) <= 100
                            or not URL_RE.fullmatch(link["url"])):
                        raise OperationError('each link is {"name": text, "url": "https://…"}')
                    clean.append({"name": groups.checked(link["name"].strip(), "link name",
                                                         multiline=False),
                                  "url": link["url"]})
                fresh.links = clean
            for flag in ("manually_approves_followers", "discoverable", "indexable"):
                if flag in changes:
                    if not isinstance(changes[flag], bool):
                        raise OperationError(f"'{flag}' must be true or false")
                    setattr(fresh, flag, changes[flag])
            fresh.updated_at = utcnow()
            session.add(fresh)
            await session.flush()
            document = actor_document(fresh, node.urls)
            document.pop("@context", None)
            to, cc = audience(node.urls, fresh)
            await publishing.record_activity(
                session, fresh, node.urls, activity_type="Update", obj=document, to=to,
                cc=cc, to_followers=True,
                in_outbox=False)
    except groups.GroupError as exc:
        raise OperationError(str(exc)) from exc
    node.changed()
    return fresh


async def _shown_as(session: AsyncSession, media: MediaFile, field: str) -> str:
    """The file an actor's icon points to: the 400-pixel variant of an avatar.

    Mastodon shows avatars at 400x400 at most and drops a remote avatar over
    2 MB (8 MB with libvips), which a 2560-pixel PNG can be. The header keeps
    the original (Mastodon's is 1500x500, larger than the 1280 variant)."""
    if field != "avatar":
        return media.name
    variants = (await session.exec(select(MediaFile).where(
        MediaFile.variant_of == media.id))).all()
    smallest = min(variants, key=lambda v: v.width * v.height, default=None)
    return smallest.name if smallest is not None else media.name


GROUP_FIELDS = frozenset({"display_name", "summary", "language", "avatar", "header", "links",
                          "manually_approves_followers", "discoverable", "indexable"})
MAX_LINKS = 4  # what Mastodon shows as profile fields
MAX_PINNED = 5  # what Mastodon reads from a featured collection


def _str(changes: dict[str, Any], field: str) -> str:
    value = changes[field]
    if not isinstance(value, str):
        raise OperationError(f"'{field}' must be a string")
    return value


async def pin(node: Node, object_id: str, *, pinned: bool,
              allowed_actor: int | None = None) -> str:
    """Pin a post to the group's ``featured`` collection (Mastodon shows it on top)."""
    from sqlalchemy import func

    actor, obj = await _own_object(node, object_uuid_from(node, object_id), allowed_actor)
    async with node.db.write() as session:
        fresh = await session.get(LocalObject, obj.id)
        assert fresh is not None
        if fresh.deleted_at is not None:
            raise OperationError("that post was deleted", status=410)
        if pinned and fresh.pinned_at is None:
            count = (await session.exec(select(func.count()).select_from(LocalObject).where(
                LocalObject.local_actor_id == actor.id,
                col(LocalObject.pinned_at).is_not(None)))).one()
            if count >= MAX_PINNED:
                raise OperationError(f"at most {MAX_PINNED} posts can be pinned; unpin one")
            fresh.pinned_at = utcnow()
        elif not pinned:
            fresh.pinned_at = None
        session.add(fresh)
    node.changed()
    return node.urls.object(obj.uuid)


async def replies(node: Node, username: str) -> list[RemoteObject]:
    """Replies other servers sent to the group's posts, newest first."""
    actor = await require_group(node, username)
    prefix = node.urls.object("")
    async with node.db.read() as session:
        uuids = list((await session.exec(select(LocalObject.uuid).where(
            LocalObject.local_actor_id == actor.id))).all())
        if not uuids:
            return []
        rows = await session.exec(select(RemoteObject).where(
            col(RemoteObject.in_reply_to).in_([prefix + u for u in uuids]),
            col(RemoteObject.deleted).is_(False)).order_by(col(RemoteObject.received_at).desc()))
        return list(rows.all())


async def hide_reply(node: Node, reply_id: int, *, hidden: bool = True,
                     allowed_actor: int | None = None) -> None:
    """Hide a received reply: hidden replies are never shown on public pages."""
    async with node.db.write() as session:
        reply = await session.get(RemoteObject, reply_id)
        target = (object_uuid_from(node, reply.in_reply_to or "") if reply else "")
        obj = await publishing.get_object(session, target) if target else None
        if reply is None or obj is None or (allowed_actor is not None
                                            and obj.local_actor_id != allowed_actor):
            raise OperationError("no such reply", status=404)
        reply.moderation_state = "hidden" if hidden else "approved"
        session.add(reply)
    node.changed()
