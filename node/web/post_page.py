"""One post's page: an action call (when, where, target, co-signers, status, calendar,
flyer), a news item or bulletin, or a note. Language versions are tabs: links to
``#v-<lang>`` that show one version at a time without script (site.css, ``:target``);
the version first shown is the reader's language, else the post's own. Bulletins
already link items as ``<item>#v-<lang>`` (node/news/bulletin.py).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from markupsafe import Markup
from sqlmodel.ext.asyncio.session import AsyncSession

from node.calls import operations as calls
from node.calls.events import public_online_url
from node.core import calendars
from node.core.languages import autonym
from node.core.text import html_to_plain
from node.federation.runtime import Node
from node.mail import subscriptions
from node.storage.models import Event, LocalActor, LocalObject, NewsItem
from node.web import listings, pages
from node.web.i18n import direction

OG_DESCRIPTION = 200


def map_link(event: Event) -> str | None:
    """An OpenStreetMap link for the place (a link only: the page loads nothing from it)."""
    place = event.place or {}
    lat, lon = place.get("latitude"), place.get("longitude")
    if isinstance(lat, int | float) and isinstance(lon, int | float):
        return (f"https://www.openstreetmap.org/?{urlencode({'mlat': lat, 'mlon': lon})}"
                f"#map=17/{lat}/{lon}")
    query = listings.place_line(event)
    return f"https://www.openstreetmap.org/search?query={quote(query)}" if query else None


def tabs(obj: LocalObject, language: str) -> tuple[list[dict[str, Any]], str]:
    """Every language version (title and text) and the one shown first."""
    langs = list(dict.fromkeys([*obj.names, *obj.contents])) or [obj.language]
    first = language if language in langs else (obj.language if obj.language in langs
                                                 else langs[0])
    ordered = [first, *(lang for lang in langs if lang != first)]
    return [{"lang": lang, "dir": direction(lang), "name": autonym(lang),
             "title": obj.names.get(lang),
             "html": Markup(obj.contents.get(lang, ""))}  # noqa: S704 - sanitised on the way in
            for lang in ordered], first


async def call_details(session: AsyncSession, node: Node, obj: LocalObject,
                       actor: LocalActor, language: str) -> dict[str, Any]:
    event = await calls.event_for(session, obj)
    organizers = await calls.organizers_of(session, node.urls, actor, event)
    flyer = None
    if event.flyer and event.flyer.get("path"):
        flyer = {"url": node.urls.media(event.flyer["path"]),
                 "alt": event.flyer.get("alt") or "",
                 "width": event.flyer.get("width"), "height": event.flyer.get("height")}
    return {
        "status": event.status,
        "when": calendars.format_datetime(event.start_time, language, event.timezone),
        "until": calendars.format_datetime(event.end_time, language, event.timezone)
        if event.end_time else None,
        "start_iso": event.start_time.isoformat(),
        "timezone": event.timezone,
        "place": listings.place_line(event), "map": map_link(event),
        "online": public_online_url(event),
        "target": event.target,
        "cosigners": [{"url": url, "name": name} for url, name in organizers[1:]],
        "ics": node.urls.object(obj.uuid) + "/calendar.ics",
        "flyer": flyer,
    }


async def news_kind(session: AsyncSession, obj: LocalObject) -> str | None:
    from sqlmodel import select

    return (await session.exec(select(NewsItem.kind)
                               .where(NewsItem.object_id == obj.id))).first()


async def render(node: Node, session: AsyncSession, obj: LocalObject, actor: LocalActor,
                 language: str) -> dict[str, Any]:
    """The template context of one post's page (post.html)."""
    versions, first = tabs(obj, language)
    call = await call_details(session, node, obj, actor, language) \
        if obj.object_type == "Event" else None
    kind = "call" if call else (await news_kind(session, obj) or "note")
    mail_lists = await subscriptions.languages_of(session, actor) \
        if kind == "bulletin" and node.settings.mail_enabled else []
    shown = versions[0]
    description = " ".join(html_to_plain(str(shown["html"])).split())[:OG_DESCRIPTION]
    return {
        "obj": obj, "actor": actor, "actor_url": node.urls.actor(actor.username),
        "object_url": node.urls.object(obj.uuid), "versions": versions, "first": first,
        "call": call, "kind": kind, "mail_lists": mail_lists,
        "title": shown["title"] or actor.display_name,
        "og_description": description,
        "published": calendars.format_datetime(obj.published, language, "UTC"),
        "og_image": call["flyer"]["url"] if call and call["flyer"] else
        pages.group_entry(node, actor)["avatar"],
    }
