"""Action calls in language channels: each channel's own one-language Event (issue 13).

A channel ``GROUP_LANG`` publishes the version of each of its group's calls in
its language as an Event of its own (``attributedTo`` the channel), for the
reason news items get copies (node/news/channels.py): an Announce would make
Mastodon fetch the call with every language. The copy has its own ``event``
row with the call's time, place and status, so calendars and Mobilizon read
it like any call; it is kept in line whenever the call is sent
(operations.send_event) and deleted with it.
"""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from node.core.urls import Urls
from node.federation import publishing
from node.news import operations as news
from node.storage.db import utcnow
from node.storage.models import Event, LocalActor, LocalObject, NewsCopy

SHARED_FIELDS = ("kind", "start_time", "end_time", "timezone", "status", "place", "online_url",
                 "target", "hashtags", "flyer", "contact_links", "join_mode", "category",
                 "sequence")


def _state(copy: LocalObject, event: Event) -> tuple[Any, ...]:
    return (copy.names, copy.contents, *(getattr(event, f) for f in SHARED_FIELDS))


async def sync(session: AsyncSession, urls: Urls, group: LocalActor, obj: LocalObject,
               event: Event) -> None:
    """Create, Update or Delete each channel's copy of the call ``obj``."""
    from node.calls import operations as calls  # operations calls us: imported on use

    existing = {copy.local_actor_id: copy for _, copy in await news.copies_of(session, obj)}
    for channel, channel_actor in await news.channels_of(session, group):
        lang = channel.language
        copy = existing.get(channel_actor.id or 0)
        if lang not in obj.names:
            if copy is not None:
                await news.delete_copy(session, urls, channel_actor, copy)
            continue
        if copy is not None and copy.deleted_at is not None:
            continue  # a deleted copy's id never comes back
        if copy is None:
            copy = LocalObject(uuid=publishing.new_uuid(), local_actor_id=channel_actor.id or 0,
                               object_type="Event", language=lang)
            session.add(copy)
            await session.flush()
            copy_event = Event(object_id=copy.id or 0, start_time=event.start_time,
                               timezone=event.timezone)
            session.add(NewsCopy(source_object_id=obj.id or 0, channel_id=channel.id or 0,
                                 object_id=copy.id or 0))
            before = None
        else:
            copy_event = await calls.event_for(session, copy)
            before = _state(copy, copy_event)
        copy.names = {lang: obj.names[lang]}
        copy.contents = {lang: obj.contents[lang]} if lang in obj.contents else {}
        for field in SHARED_FIELDS:
            setattr(copy_event, field, getattr(event, field))
        if before is not None and _state(copy, copy_event) == before:
            continue  # e.g. a co-signer accepted: nothing the channel shows changed
        if before is not None:
            copy.updated = utcnow()
        session.add_all([copy, copy_event])
        await session.flush()
        document = await calls.document(session, urls, copy, channel_actor, with_context=False)
        await news.send_to_followers(session, urls, channel_actor,
                                     "Create" if before is None else "Update", copy, document)
