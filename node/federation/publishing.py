"""Publishing: our posts become activities, activities become delivery rows.

Everything in one write transaction (object, activity, deliveries), so a
crash never leaves a post without its deliveries or the reverse.
"""

from __future__ import annotations

import uuid as uuidlib
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from node.core.jsonsafe import dumps
from node.core.text import plain_to_html
from node.core.urls import Urls
from node.federation import delivery
from node.federation.vocabulary import PUBLIC, activity_document, audience, object_document
from node.storage.db import utcnow
from node.storage.models import Activity, Follower, LocalActor, LocalObject

MAX_NOTE_CHARS = 5000


class PublishError(ValueError):
    """Bad input for a post; the message is for the person who wrote it."""


def new_uuid() -> str:
    return uuidlib.uuid4().hex


async def follower_inboxes(session: AsyncSession, actor: LocalActor) -> list[str]:
    """One inbox per server where it has a shared inbox (DESIGN.md, delivery)."""
    rows = await session.exec(
        select(Follower.inbox, Follower.shared_inbox).where(
            Follower.local_actor_id == actor.id, Follower.state == "accepted"
        )
    )
    return sorted({shared or inbox for inbox, shared in rows.all()})


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
    in_outbox: bool = True,
    object_uri: str | None = None,
    extra: dict[str, Any] | None = None,
    activity_uuid: str | None = None,
) -> Activity:
    """Store an activity (body serialised once) and queue it to ``inboxes``.

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
    if inboxes:
        await delivery.enqueue(session, activity.id or 0, inboxes)
    return activity


def _note_contents(text: str, language: str) -> dict[str, str]:
    text = text.strip()
    if not text:
        raise PublishError("a note needs some text")
    if len(text) > MAX_NOTE_CHARS:
        raise PublishError(f"a note is at most {MAX_NOTE_CHARS} characters")
    return {language: plain_to_html(text)}


async def publish_note(
    session: AsyncSession, actor: LocalActor, urls: Urls, *, text: str, language: str | None = None
) -> LocalObject:
    lang = language or actor.language
    obj = LocalObject(
        uuid=new_uuid(),
        local_actor_id=actor.id or 0,
        object_type="Note",
        language=lang,
        contents=_note_contents(text, lang),
    )
    session.add(obj)
    await session.flush()
    await announce_object(session, actor, obj, urls, "Create")
    return obj


async def announce_object(
    session: AsyncSession, actor: LocalActor, obj: LocalObject, urls: Urls, activity_type: str
) -> Activity:
    """Send Create/Update/Delete of one of our objects to every follower."""
    to, cc = audience(urls, actor)
    document = object_document(obj, actor, urls, with_context=False)
    return await record_activity(
        session,
        actor,
        urls,
        activity_type=activity_type,
        obj=document,
        to=to,
        cc=cc,
        inboxes=await follower_inboxes(session, actor),
    )


async def get_object(session: AsyncSession, object_uuid: str) -> LocalObject | None:
    return (
        await session.exec(select(LocalObject).where(LocalObject.uuid == object_uuid))
    ).first()


async def edit_note(
    session: AsyncSession, actor: LocalActor, obj: LocalObject, urls: Urls, *, text: str
) -> LocalObject:
    if obj.deleted_at is not None:
        raise PublishError("that post was deleted")
    obj.contents = _note_contents(text, obj.language)
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
    return obj


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
