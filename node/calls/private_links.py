"""The link of a closed online meeting, sent only to accepted participants.

A restricted or invite-only meeting publishes no link (events.link_is_private):
not in the Event, its activities, the outbox, the HTML page or any calendar.
Each accepted participant gets a private ``Create{Note}`` addressed to them
alone (a direct message on Mastodon), when accepted and again when the link
changes. The Note is embedded in the activity and never stored as one of our
objects, so nothing serves it publicly; its id does not resolve.
"""

from __future__ import annotations

import html
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from node.calls.events import link_is_private
from node.core.urls import Urls
from node.federation import publishing
from node.federation.vocabulary import iso
from node.storage.db import utcnow
from node.storage.models import Event, LocalActor, LocalObject, Participation

WORDS = {"en": "The link to join", "fa": "پیوند شرکت در", "ar": "رابط المشاركة في",
         "de": "Der Link zur Teilnahme an", "fr": "Le lien pour rejoindre",
         "tr": "Katılım bağlantısı", "sv": "Länken till",  # noqa: RUF001 (Turkish dotless i)
         "ckb": "بەستەری بەشداری لە"}


def link_note(urls: Urls, actor: LocalActor, obj: LocalObject, event: Event,
              recipient: str) -> dict[str, Any]:
    lang = obj.language
    title = obj.names.get(lang) or next(iter(obj.names.values()), "")
    url = html.escape(event.online_url or "")
    content = (f"<p>{html.escape(WORDS.get(lang.split('-')[0], WORDS['en']))} "
               f'<a href="{html.escape(urls.object(obj.uuid))}">'
               f"{html.escape(title, quote=False)}</a>:</p>"
               f'<p><a href="{url}">{url}</a></p>')
    return {
        # Not one of our stored objects: fetching this id gives 404 (see above).
        "id": urls.object(publishing.new_uuid()), "type": "Note",
        "attributedTo": urls.actor(actor.username), "to": [recipient], "cc": [],
        "content": content, "contentMap": {lang: content}, "context": urls.object(obj.uuid),
        "tag": [{"type": "Mention", "href": recipient}], "published": iso(utcnow()),
    }


async def send_link(session: AsyncSession, urls: Urls, actor: LocalActor, obj: LocalObject,
                    event: Event, participation: Participation, *,
                    activity_uuid: str | None = None) -> None:
    """The link, privately, to one accepted participant. ``activity_uuid`` lets a
    retried inbox item re-use the id it minted the first time (no second copy)."""
    if not link_is_private(event) or participation.state != "accepted":
        return
    await publishing.send_to(
        session, actor, urls, activity_type="Create",
        obj=link_note(urls, actor, obj, event, participation.actor_uri),
        recipient=participation.actor_uri, inbox=participation.inbox,
        activity_uuid=activity_uuid)


async def send_link_to_all(session: AsyncSession, urls: Urls, actor: LocalActor,
                           obj: LocalObject, event: Event) -> None:
    """The link changed (or became private): every accepted participant gets it anew."""
    rows = await session.exec(select(Participation).where(
        Participation.event_id == event.id, Participation.state == "accepted"))
    for participation in rows.all():
        await send_link(session, urls, actor, obj, event, participation)
