"""Publishing: our posts become activities, activities enter the fan-out log.

Everything in one write transaction (object, activity, fan-out row), so a
crash never leaves a post without its deliveries or the reverse.
"""

from __future__ import annotations

import logging
import uuid as uuidlib
from dataclasses import dataclass
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from node.core import characters
from node.core.jsonsafe import dumps
from node.core.text import hashtags_in, plain_to_html
from node.core.urls import Urls
from node.federation import crosspost_log, delivery
from node.federation.vocabulary import (
    PUBLIC,
    activity_document,
    audience,
    mentioned_actors,
    object_document,
    tag_url,
)
from node.storage.db import utcnow
from node.storage.models import Activity, LocalActor, LocalObject, RemoteActor

MAX_NOTE_CHARS = 5000

log = logging.getLogger("hambastegi.publishing")


class PublishError(ValueError):
    """Bad input for a post; the message is for the person who wrote it."""


def new_uuid() -> str:
    return uuidlib.uuid4().hex


async def record_activity(
    session: AsyncSession,
    actor: LocalActor,
    urls: Urls,
    *,
    activity_type: str,
    obj: Any,
    to: list[str],
    cc: list[str] | None = None,
    inboxes: list[str] | None = None,
    to_followers: bool = False,
    in_outbox: bool = True,
    object_uri: str | None = None,
    extra: dict[str, Any] | None = None,
    activity_uuid: str | None = None,
) -> Activity:
    """Store an activity (body serialised once) and append it to the fan-out
    log (``delivery.fan_out``): to every accepted follower of ``actor`` if
    ``to_followers``, and to ``inboxes`` (a short explicit list). Each host's
    lane sends it after what the actor published before (docs/ARCHITECTURE.md §2).

    ``activity_uuid``: a caller that may run twice for one cause (an inbox
    handler being retried) passes an id derived from that cause; if it is
    already recorded, that activity is returned and nothing is queued again.
    """
    if activity_uuid is not None:
        already = (await session.exec(
            select(Activity).where(Activity.uuid == activity_uuid))).first()
        if already is not None:
            return already
    activity_uuid = activity_uuid or new_uuid()
    now = utcnow()
    doc = activity_document(
        activity_id=urls.activity(activity_uuid),
        activity_type=activity_type,
        actor_id=urls.actor(actor.username),
        obj=obj,
        to=to,
        cc=cc,
        published=now,
        extra=extra,
    )
    if object_uri is None:
        object_uri = obj if isinstance(obj, str) else obj.get("id")
    activity = Activity(
        uuid=activity_uuid,
        local_actor_id=actor.id or 0,
        activity_type=activity_type,
        object_uri=object_uri,
        body=dumps(doc),
        in_outbox=in_outbox,
        published=now,
    )
    session.add(activity)
    await session.flush()
    await delivery.fan_out(session, activity.id or 0,
                           followers_of=actor.id if to_followers else None,
                           inboxes=inboxes or ())
    if to_followers and in_outbox and isinstance(obj, dict):
        # Telegram / Bluesky copies, in this transaction like the fan-out row (issue 27).
        await crosspost_log.record(session, actor.id or 0, activity_type, obj, to)
    return activity


@dataclass(frozen=True)
class Mention:
    """An @user@host in a note, resolved (WebFinger) before the write transaction."""

    handle: str  # user@host
    actor_uri: str
    profile_url: str


def _note_fields(text: str, language: str, urls: Urls,
                 mentions: list[Mention]) -> tuple[dict[str, str], list[dict[str, str]]]:
    """Contents and the ``tag`` array: Mastodon indexes hashtags and notifies
    mentioned accounts only from ``tag`` (Hashtag / Mention with href and name)."""
    try:
        text = characters.check(text.strip(), "the note", multiline=True)
    except characters.CharacterError as exc:
        raise PublishError(str(exc)) from exc
    if not text:
        raise PublishError("a note needs some text")
    if len(text) > MAX_NOTE_CHARS:
        raise PublishError(f"a note is at most {MAX_NOTE_CHARS} characters")
    links = {m.handle: m.profile_url for m in mentions}
    html = plain_to_html(text, tag_url=lambda tag: tag_url(urls, tag), mentions=links)
    tags = [{"type": "Hashtag", "href": tag_url(urls, tag), "name": f"#{tag}"}
            for tag in hashtags_in(text)]
    tags += [{"type": "Mention", "href": m.actor_uri, "name": f"@{m.handle}"}
             for m in mentions]
    return {language: html}, tags


def _set_tags(obj: LocalObject, tags: list[dict[str, str]]) -> None:
    extra = {k: v for k, v in obj.extra.items() if k != "tag"}
    if tags:
        extra["tag"] = tags
    obj.extra = extra


async def publish_note(
    session: AsyncSession, actor: LocalActor, urls: Urls, *, text: str,
    language: str | None = None, mentions: list[Mention] | None = None,
    in_reply_to: str | None = None,
) -> LocalObject:
    lang = language or actor.language
    contents, tags = _note_fields(text, lang, urls, mentions or [])
    obj = LocalObject(
        uuid=new_uuid(),
        local_actor_id=actor.id or 0,
        object_type="Note",
        language=lang,
        contents=contents,
        in_reply_to=in_reply_to,
    )
    _set_tags(obj, tags)
    session.add(obj)
    await session.flush()
    await announce_object(session, actor, obj, urls, "Create")
    return obj


async def mentioned_inboxes(session: AsyncSession, urls: Urls, actor_uris: list[str]) -> list[str]:
    """Inboxes of mentioned remote actors (cached when the mention was resolved)."""
    remote = [uri for uri in actor_uris if not urls.is_local(uri)]
    if not remote:
        return []
    rows = await session.exec(select(RemoteActor.inbox, RemoteActor.shared_inbox).where(
        col(RemoteActor.uri).in_(remote), col(RemoteActor.deleted).is_(False)))
    return sorted({shared or inbox for inbox, shared in rows.all()})


async def announce_object(
    session: AsyncSession, actor: LocalActor, obj: LocalObject, urls: Urls, activity_type: str
) -> Activity:
    """Send Create/Update/Delete of one of our objects to every follower and
    to every actor it mentions (they are in ``cc`` too)."""
    to, cc = audience(urls, actor)
    cc = cc + [uri for uri in mentioned_actors(obj) if uri not in cc]
    document = object_document(obj, actor, urls, with_context=False)  # a Tombstone if deleted
    inboxes = await mentioned_inboxes(session, urls, mentioned_actors(obj))
    return await record_activity(
        session,
        actor,
        urls,
        activity_type=activity_type,
        obj=document,
        to=to,
        cc=cc,
        inboxes=inboxes,
        to_followers=True,
    )


async def get_object(session: AsyncSession, object_uuid: str) -> LocalObject | None:
    return (
        await session.exec(select(LocalObject).where(LocalObject.uuid == object_uuid))
    ).first()


async def edit_note(
    session: AsyncSession, actor: LocalActor, obj: LocalObject, urls: Urls, *, text: str,
    mentions: list[Mention] | None = None,
) -> LocalObject:
    if obj.deleted_at is not None:
        raise PublishError("that post was deleted")
    if obj.object_type != "Note":
        raise PublishError("only notes are edited this way")
    obj.contents, tags = _note_fields(text, obj.language, urls, mentions or [])
    _set_tags(obj, tags)
    obj.updated = utcnow()
    session.add(obj)
    await session.flush()
    await announce_object(session, actor, obj, urls, "Update")
    return obj


async def delete_object(
    session: AsyncSession, actor: LocalActor, obj: LocalObject, urls: Urls
) -> LocalObject:
    if obj.deleted_at is not None:
        raise PublishError("that post was already deleted")
    obj.deleted_at = utcnow()
    obj.pinned_at = None
    session.add(obj)
    await session.flush()
    await announce_object(session, actor, obj, urls, "Delete")
    # The public Notes that announced a postponement or cancellation repeat
    # the event's time and place: they go with it.
    for note in await _status_notes_of(session, actor, obj, urls):
        await delete_object(session, actor, note, urls)
    return obj


async def _status_notes_of(session: AsyncSession, actor: LocalActor, obj: LocalObject,
                           urls: Urls) -> list[LocalObject]:
    if obj.object_type != "Event":
        return []
    rows = await session.exec(select(LocalObject).where(
        LocalObject.local_actor_id == actor.id, LocalObject.object_type == "Note",
        col(LocalObject.deleted_at).is_(None), col(LocalObject.published) >= obj.published))
    event_uri = urls.object(obj.uuid)
    return [note for note in rows.all() if note.extra.get("context") == event_uri]


async def send_follow(
    session: AsyncSession, actor: LocalActor, urls: Urls, *, target_uri: str, inbox: str
) -> Activity:
    return await record_activity(
        session, actor, urls, activity_type="Follow", obj=target_uri, to=[target_uri],
        inboxes=[inbox], in_outbox=False,
    )


async def send_to(
    session: AsyncSession,
    actor: LocalActor,
    urls: Urls,
    *,
    activity_type: str,
    obj: Any,
    recipient: str,
    inbox: str,
    activity_uuid: str | None = None,
) -> Activity:
    """A private activity to one actor (Accept, Reject, Undo …)."""
    return await record_activity(
        session, actor, urls, activity_type=activity_type, obj=obj, to=[recipient],
        inboxes=[inbox], in_outbox=False, activity_uuid=activity_uuid,
    )


async def public_activities_count(session: AsyncSession, actor: LocalActor) -> int:
    from sqlalchemy import func

    result = await session.exec(
        select(func.count()).select_from(Activity).where(
            Activity.local_actor_id == actor.id, col(Activity.in_outbox).is_(True)
        )
    )
    return int(result.one())


__all__ = ["PUBLIC", "PublishError", "publish_note"]
