"""Publishing action calls, meetings and conferences: create, edit, postpone,
cancel. Every change bumps the iCalendar SEQUENCE and federates as Update to
the group's followers and to the co-signing groups, who relay it (cosign.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from node.calls import private_links
from node.calls.events import (
    WORDS,
    EventError,
    EventInput,
    contents_from,
    event_document,
    format_when,
    link_is_private,
    parse_input,
    parse_time,
    summary_line,
    zone,
)
from node.calls.events import (
    summary_lines as event_summary_lines,
)
from node.core.urls import Urls
from node.federation import publishing
from node.federation.runtime import Node
from node.federation.vocabulary import PUBLIC
from node.groups.operations import OperationError, require_group, usable_media
from node.storage.db import utcnow
from node.storage.models import Cosigner, Event, LocalActor, LocalObject, Participation


async def organizers_of(session: AsyncSession, urls: Urls, actor: LocalActor,
                        event: Event) -> list[tuple[str, str]]:
    """The author first, then the groups that accepted, in acceptance order."""
    rows = await session.exec(
        select(Cosigner).where(Cosigner.event_id == event.id, Cosigner.state == "accepted")
        .order_by(Cosigner.updated_at)  # type: ignore[arg-type]
    )
    return [(urls.actor(actor.username), actor.display_name)] + [
        (c.actor_uri, c.display_name or c.actor_uri) for c in rows.all()
    ]


async def summary_lines(session: AsyncSession, urls: Urls, obj: LocalObject,
                        actor: LocalActor) -> dict[str, str]:
    """The call's one-line summaries as plain text, for pages (escaped there)."""
    event = await event_for(session, obj)
    names = [name for _, name in await organizers_of(session, urls, actor, event)]
    return event_summary_lines(event, obj, names)


async def participant_count(session: AsyncSession, event: Event) -> int:
    result = await session.exec(
        select(func.count()).select_from(Participation)
        .where(Participation.event_id == event.id, Participation.state == "accepted")
    )
    return int(result.one())


async def event_for(session: AsyncSession, obj: LocalObject) -> Event:
    event = (await session.exec(select(Event).where(Event.object_id == obj.id))).first()
    if event is None:
        raise OperationError("no such event", status=404)
    return event


async def document(session: AsyncSession, urls: Urls, obj: LocalObject, actor: LocalActor,
                   *, with_context: bool = True) -> dict[str, Any]:
    event = await event_for(session, obj)
    return event_document(
        obj, event, actor, urls, organizers=await organizers_of(session, urls, actor, event),
        participant_count=await participant_count(session, event), with_context=with_context,
    )


async def cosigner_inboxes(session: AsyncSession, event: Event) -> list[str]:
    rows = await session.exec(
        select(Cosigner.inbox).where(Cosigner.event_id == event.id, Cosigner.state == "accepted")
    )
    return list(rows.all())


async def send_event(session: AsyncSession, urls: Urls, actor: LocalActor, obj: LocalObject,
                     activity_type: str) -> None:
    """Create/Update to followers and to co-signers (so they can relay it)."""
    event = await event_for(session, obj)
    doc = await document(session, urls, obj, actor, with_context=False)
    inboxes = await cosigner_inboxes(session, event)
    await publishing.record_activity(
        session, actor, urls, activity_type=activity_type, obj=doc, to=[PUBLIC],
        cc=[urls.followers(actor.username)], inboxes=inboxes,
        to_followers=True,
    )
    from node.calls import channel_copies

    # Each language channel gets its language's version as an Event of its own.
    await channel_copies.sync(session, urls, actor, obj, event)


async def _flyer(session: AsyncSession, spec: dict[str, Any] | None,
                 actor: LocalActor) -> dict[str, Any] | None:
    if spec is None:
        return None
    media = await usable_media(session, spec["media"], actor)  # the group's own uploads only
    focus = ([media.focus_x, media.focus_y]
             if media.focus_x is not None and media.focus_y is not None else None)
    return {"path": f"uploads/{media.name}", "media_type": media.media_type,
            "alt": spec.get("alt", ""), "width": media.width, "height": media.height,
            "blurhash": media.blurhash, "focalPoint": focus}


def _apply(event: Event, data: EventInput) -> None:
    event.kind = data.kind
    event.start_time = data.start
    event.end_time = data.end
    event.timezone = data.timezone
    event.place = data.place
    event.online_url = data.online_url
    event.target = data.target
    event.hashtags = data.hashtags
    event.contact_links = data.contacts
    event.join_mode = data.join_mode
    event.category = data.category


async def create_call(node: Node, username: str, body: dict[str, Any]) -> str:
    actor = await require_group(node, username)
    try:
        data = parse_input(body, actor.language)
    except EventError as exc:
        raise OperationError(str(exc)) from exc
    async with node.db.write() as session:
        obj = LocalObject(
            uuid=publishing.new_uuid(), local_actor_id=actor.id or 0, object_type="Event",
            language=data.language, names=data.titles, contents=contents_from(data.texts),
        )
        session.add(obj)
        await session.flush()
        event = Event(object_id=obj.id or 0, start_time=data.start, timezone=data.timezone)
        _apply(event, data)
        event.flyer = await _flyer(session, data.flyer, actor)
        session.add(event)
        await session.flush()
        await send_event(session, node.urls, actor, obj, "Create")
        await _mail(node, session, actor, obj, event, "published")
    node.changed()
    return node.urls.object(obj.uuid)


async def _mail(node: Node, session: AsyncSession, actor: LocalActor, obj: LocalObject,
                event: Event, change: str) -> None:
    """The call's mail to the group's subscribers, in this transaction (node/mail/calls.py)."""
    if not node.settings.mail_enabled:
        return
    from node.mail.calls import on_call

    names = [name for _, name in await organizers_of(session, node.urls, actor, event)]
    await on_call(session, node.urls, actor, obj, event, change, names)


async def _load(node: Node, session: AsyncSession, object_id: str,
                allowed_actor: int | None) -> tuple[LocalActor, LocalObject, Event]:
    from node.groups.operations import object_uuid_from

    obj = await publishing.get_object(session, object_uuid_from(node, object_id))
    if obj is None or obj.object_type != "Event" or obj.deleted_at is not None:
        raise OperationError("no such event", status=404)
    actor = await session.get(LocalActor, obj.local_actor_id)
    if actor is None or (allowed_actor is not None and actor.id != allowed_actor):
        raise OperationError("no such event", status=404)
    return actor, obj, await event_for(session, obj)


async def call_language(node: Node, object_id: str) -> str:
    """The call's primary language: what an edit's untagged texts are written in."""
    async with node.db.read() as session:
        _, obj, _ = await _load(node, session, object_id, None)
    return obj.language


async def update_call(node: Node, object_id: str, body: dict[str, Any], *,
                      allowed_actor: int | None = None) -> str:
    async with node.db.write() as session:
        actor, obj, event = await _load(node, session, object_id, allowed_actor)
        try:
            data = parse_input(body, obj.language)
        except EventError as exc:
            raise OperationError(str(exc)) from exc
        link_before = (event.online_url, link_is_private(event))
        obj.names = data.titles
        obj.contents = contents_from(data.texts)
        obj.language = data.language
        obj.updated = utcnow()
        _apply(event, data)
        if data.flyer is not None:
            event.flyer = await _flyer(session, data.flyer, actor)
        event.sequence += 1
        session.add_all([obj, event])
        await session.flush()
        await send_event(session, node.urls, actor, obj, "Update")
        if link_is_private(event) and (event.online_url, True) != link_before:
            await private_links.send_link_to_all(session, node.urls, actor, obj, event)
    node.changed()
    return node.urls.object(obj.uuid)


def status_note_contents(urls: Urls, obj: LocalObject, event: Event, names: list[str],
                         previous_start: datetime | None) -> dict[str, str]:
    """The status Note in every language of the call, primary first: the new state
    and time, the time it replaces (a postponement), and a link to the call."""
    import html as _html

    contents: dict[str, str] = {}
    for lang in [obj.language, *(k for k in obj.names if k != obj.language)]:
        title = obj.names.get(lang) or obj.names.get(obj.language) \
            or next(iter(obj.names.values()))
        paragraphs = [_html.escape(summary_line(event, lang, names), quote=False)]
        if previous_start is not None and previous_start != event.start_time:
            words = WORDS.get(lang.split("-")[0], WORDS["en"])
            paragraphs.append(f"{_html.escape(words['previously'])}: <del>"
                              f"{_html.escape(format_when(previous_start, event.timezone, lang))}"
                              "</del>")
        paragraphs.append(f'<a href="{_html.escape(urls.object(obj.uuid))}">'
                          f"{_html.escape(title, quote=False)}</a>")
        contents[lang] = "".join(f"<p>{p}</p>" for p in paragraphs)
    return contents


async def _status_note(session: AsyncSession, urls: Urls, actor: LocalActor, obj: LocalObject,
                       event: Event, previous_start: datetime | None) -> None:
    """A short public Note, because Mastodon users see Updates of an Event nowhere."""
    names = [name for _, name in await organizers_of(session, urls, actor, event)]
    note = LocalObject(uuid=publishing.new_uuid(), local_actor_id=actor.id or 0,
                       object_type="Note", language=obj.language,
                       contents=status_note_contents(urls, obj, event, names, previous_start),
                       extra={"context": urls.object(obj.uuid)})
    session.add(note)
    await session.flush()
    inboxes = await cosigner_inboxes(session, event)
    from node.federation.vocabulary import object_document

    await publishing.record_activity(
        session, actor, urls, activity_type="Create",
        obj=object_document(note, actor, urls, with_context=False),
        to=[PUBLIC], cc=[urls.followers(actor.username)], inboxes=inboxes,
        to_followers=True,
    )


async def change_status(node: Node, object_id: str, status: str, *, start: str | None = None,
                        end: str | None = None, allowed_actor: int | None = None) -> str:
    """Postpone (optionally to a new time) or cancel: Update + a public Note."""
    if status not in ("postponed", "cancelled", "scheduled"):
        raise OperationError("status must be postponed, cancelled or scheduled")
    async with node.db.write() as session:
        actor, obj, event = await _load(node, session, object_id, allowed_actor)
        previous_start = event.start_time
        if start is not None:
            try:
                tz = zone(event.timezone)
                new_start: datetime = parse_time(start, tz, "start")
                new_end = parse_time(end, tz, "end") if end is not None else None
            except EventError as exc:
                raise OperationError(str(exc)) from exc
            if new_end is None and event.end_time is not None:
                new_end = new_start + (event.end_time - event.start_time)
            if new_end is not None and new_end < new_start:
                raise OperationError("end is before start")
            event.start_time, event.end_time = new_start, new_end
        event.status = status
        event.sequence += 1
        obj.updated = utcnow()
        session.add_all([obj, event])
        await session.flush()
        await send_event(session, node.urls, actor, obj, "Update")
        if status != "scheduled":
            await _status_note(session, node.urls, actor, obj, event, previous_start)
            await _mail(node, session, actor, obj, event, status)
    node.changed()
    return node.urls.object(obj.uuid)
