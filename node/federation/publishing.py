"""Publishing: our posts become activities, activities become delivery rows.

Everything in one write transaction (object, activity, deliveries), so a
crash never leaves a post without its deliveries or the reverse.
"""

from __future__ import annotations

import logging
import uuid as uuidlib
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

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
# Distinct inbox URLs one activity goes to on one host (``choose_inboxes``).
MAX_INBOXES_PER_HOST = 50
DEFAULT_PORTS = {"http": 80, "https": 443}

log = logging.getLogger("hambastegi.publishing")


class PublishError(ValueError):
    """Bad input for a post; the message is for the person who wrote it."""


def new_uuid() -> str:
    return uuidlib.uuid4().hex


async def follower_inboxes(session: AsyncSession, actor: LocalActor) -> list[str]:
    """The inboxes an activity to the actor's followers goes to (``choose_inboxes``)."""
    rows = await session.exec(
        select(Follower.actor_uri, Follower.inbox, Follower.shared_inbox).where(
            Follower.local_actor_id == actor.id, Follower.state == "accepted"
        )
    )
    return choose_inboxes(rows.all())


def _origin(url: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname, port if port is not None else DEFAULT_PORTS[scheme]


def choose_inboxes(followers: Iterable[tuple[str, str, str | None]], *,
                   per_host: int = MAX_INBOXES_PER_HOST) -> list[str]:
    """Where one activity to these followers (actor URI, inbox, shared inbox) goes.

    - A shared inbox counts only on the follower's own origin: a follower must not
      be able to point our deliveries at another server.
    - One delivery per distinct inbox URL, so followers sharing a shared inbox cost
      one POST.
    - At most ``per_host`` distinct inboxes per host: a host (or whoever registers
      thousands of followers on it) cannot make us sign and POST thousands of
      copies. Shared inboxes are kept first, the most used first; followers whose
      inbox falls past the bound go to the host's most used shared inbox, or, if
      the host has none, are not delivered to (logged).
    """
    wanted: dict[str, dict[str, int]] = {}  # host -> inbox URL -> followers
    shared_of: dict[str, dict[str, int]] = {}  # host -> shared inbox -> followers
    for actor_uri, inbox, shared in followers:
        home = _origin(actor_uri)
        if shared and (home is None or _origin(shared) != home
                       or delivery.inbox_host(shared) is None):
            shared = None
        target = shared or inbox
        host = delivery.inbox_host(target)
        if host is None:
            continue  # enqueue would refuse it anyway
        counts = wanted.setdefault(host, {})
        counts[target] = counts.get(target, 0) + 1
        if shared:
            by_shared = shared_of.setdefault(host, {})
            by_shared[shared] = by_shared.get(shared, 0) + 1
    chosen: list[str] = []
    for host, counts in wanted.items():
        shared_here = shared_of.get(host, {})
        ranked = sorted(counts, key=lambda url: (url not in shared_here, -counts[url], url))
        kept, over = ranked[:per_host], ranked[per_host:]
        chosen += kept
        if over and not shared_here:
            log.warning("followers not delivered to: too many inboxes on one host", extra={
                "host": delivery.log_host(host), "inboxes": len(over),
                "followers": sum(counts[url] for url in over)})
        # Past the bound with a shared inbox: the host's most used shared inbox,
        # ranked first and so already kept, receives for them.
    return sorted(chosen)


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
) -> Activity:
    """Store an activity (body serialised once) and queue it to ``inboxes``."""
    activity_uuid = new_uuid()
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
) -> Activity:
    """A private activity to one actor (Accept, Reject, Undo …)."""
    return await record_activity(
        session, actor, urls, activity_type=activity_type, obj=obj, to=[recipient],
        inboxes=[inbox], in_outbox=False,
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
