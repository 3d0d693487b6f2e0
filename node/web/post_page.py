"""One post's page: an action call (when, where, target, co-signers, status, calendar,
flyer), a news item (its photos; a channel's copy shows its item's) or bulletin, or a
note; the flyer or first photo is the page's og:image (web/pictures.py). Language
versions are tabs: links to ``#v-<lang>`` that show one version at a time without
script (site.css, ``:target``); the version first shown is the reader's language, else
the post's own. Bulletins already link items as ``<item>#v-<lang>`` (node/news/bulletin.py).
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
from node.news.items import without_title_lead
from node.storage.models import Event, LocalActor, LocalObject, NewsCopy, NewsItem
from node.web import listings, pages, pictures
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
    # A Note's content leads with its title in bold (for Mastodon, which shows no
    # name); here the title is the version's heading, so it is shown once.
    return [{"lang": lang, "dir": direction(lang), "name": autonym(lang),
             "title": obj.names.get(lang),
             "html": Markup(without_title_lead(  # noqa: S704 - sanitised on the way in
                 obj.contents.get(lang, ""), obj.names.get(lang)))}
            for lang in ordered], first


async def call_details(session: AsyncSession, node: Node, obj: LocalObject,
                       actor: LocalActor, language: str) -> dict[str, Any]:
    event = await calls.event_for(session, obj)
    organizers = await calls.organizers_of(session, node.urls, actor, event)
    flyer = None
    if event.flyer and event.flyer.get("path"):
        # One alt text, in the call's own language.
        flyer = pictures.picture(node.urls, event.flyer,
                                 await pictures.copies_of(session, [event.flyer["path"]]),
                                 event.flyer.get("alt") or "", obj.language)
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


async def news_item(session: AsyncSession, obj: LocalObject) -> NewsItem | None:
    """The news item ``obj`` presents: its own, or the one a channel's copy is of."""
    from sqlmodel import col, select

    own = (await session.exec(select(NewsItem).where(NewsItem.object_id == obj.id))).first()
    if own is not None:
        return own
    return (await session.exec(select(NewsItem).join(
        NewsCopy, col(NewsCopy.source_object_id) == NewsItem.object_id).where(
        NewsCopy.object_id == obj.id))).first()


async def news_photos(session: AsyncSession, node: Node, item: NewsItem, obj: LocalObject,
                      language: str) -> list[pictures.Picture]:
    """The item's photos, each with its alt text in the page's language if written."""
    copies = await pictures.copies_of(session, [p.get("path") for p in item.photos])
    out = []
    for photo in item.photos:
        if not photo.get("path"):
            continue
        alt, alt_lang = pictures.pick_alt(photo.get("alt") or {}, language, obj.language)
        out.append(pictures.picture(node.urls, photo, copies, alt, alt_lang))
    return out


async def render(node: Node, session: AsyncSession, obj: LocalObject, actor: LocalActor,
                 language: str) -> dict[str, Any]:
    """The template context of one post's page (post.html)."""
    versions, first = tabs(obj, language)
    call = await call_details(session, node, obj, actor, language) \
        if obj.object_type == "Event" else None
    item = None if call else await news_item(session, obj)
    photos = await news_photos(session, node, item, obj, language) if item else []
    kind = "call" if call else (item.kind if item else "note")
    mail_lists = await subscriptions.languages_of(session, actor) \
        if kind == "bulletin" and node.settings.mail_enabled else []
    shown = versions[0]
    description = " ".join(html_to_plain(str(shown["html"])).split())[:OG_DESCRIPTION]
    # The picture a shared link shows: the first photo, the flyer, else the group's avatar.
    lead = photos[0] if photos else (call["flyer"] if call and call["flyer"] else None)
    return {
        "obj": obj, "actor": actor, "actor_url": node.urls.actor(actor.username),
        "object_url": node.urls.object(obj.uuid), "versions": versions, "first": first,
        "call": call, "kind": kind, "mail_lists": mail_lists,
        "title": shown["title"] or actor.display_name, "photos": photos,
        "og_description": description,
        "published": calendars.format_datetime(obj.published, language, "UTC"),
        **(lead.og() if lead else {"og_image": pages.group_entry(node, actor)["avatar"]}),
    }
