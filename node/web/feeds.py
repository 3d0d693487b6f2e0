"""Atom (RFC 4287) and JSON Feed 1.1 of a group's or a language channel's posts (issue 13).

Readers without an ActivityPub account follow a group (or one language of it,
through its channel ``GROUP_LANG``) in a feed reader. Each entry carries its
language (``xml:lang`` / ``language``), the full sanitised HTML of its
primary version, photos as enclosures / attachments and ``hreflang``
alternates to its other versions — the same fields the object federates
(FEDERATION.md, "News items"). Notes, news items and action calls all appear.
"""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree as ET  # we write XML, never parse it

import orjson
from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import Response

from node.core.text import html_to_plain
from node.federation import local_actors
from node.federation.runtime import Node
from node.federation.vocabulary import iso
from node.storage.models import Event, LocalActor, LocalObject

ATOM_NS = "http://www.w3.org/2005/Atom"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
ENTRIES = 20
TITLE_CHARS = 80
ATOM_TYPE = "application/atom+xml"
JSON_FEED_TYPE = "application/feed+json"
FEED_HEADERS = {"Cache-Control": "public, max-age=60", "X-Content-Type-Options": "nosniff"}


def atom_element(parent: ET.Element, tag: str, text: str | None = None,
                 **attrs: str) -> ET.Element:
    """A child element in the Atom namespace (RFC 4287), with its text."""
    element = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
    if text is not None:
        element.text = text
    return element


def atom_root(**attrs: str) -> ET.Element:
    """An Atom ``feed`` element; the namespace is written as the default one."""
    ET.register_namespace("", ATOM_NS)
    return ET.Element(f"{{{ATOM_NS}}}feed", attrs)


def feed_urls(node: Node, username: str) -> tuple[str, str]:
    base = node.urls.actor(username)
    return f"{base}/feed.atom", f"{base}/feed.json"


def _title(obj: LocalObject) -> str:
    name = obj.names.get(obj.language) or next(iter(obj.names.values()), None)
    if name:
        return name
    text = " ".join(html_to_plain(_content(obj)).split())
    return text if len(text) <= TITLE_CHARS else text[:TITLE_CHARS].rsplit(" ", 1)[0] + " …"


def _content(obj: LocalObject) -> str:
    return obj.contents.get(obj.language) or next(iter(obj.contents.values()), "")


def _alternates(obj: LocalObject) -> list[dict[str, str]]:
    """The other versions' links (news items list them in ``url``)."""
    links = obj.extra.get("url")
    if not isinstance(links, list):
        return []
    return [link for link in links if isinstance(link, dict)
            and link.get("rel") == "alternate" and isinstance(link.get("href"), str)
            and isinstance(link.get("hreflang"), str)]


def _photos(obj: LocalObject, flyer: dict[str, Any] | None, node: Node) -> list[dict[str, Any]]:
    found = [a for a in obj.extra.get("attachment", []) if isinstance(a, dict)
             and a.get("type") == "Image" and isinstance(a.get("url"), str)]
    if flyer:
        found.append({"url": node.urls.media(flyer["path"]), "mediaType": flyer["media_type"],
                      "name": flyer.get("alt") or ""})
    return found


async def _entries(node: Node, actor: LocalActor
                   ) -> list[tuple[LocalObject, dict[str, Any] | None]]:
    async with node.db.read() as session:
        objects = list((await session.exec(
            select(LocalObject).where(LocalObject.local_actor_id == actor.id,
                                      col(LocalObject.deleted_at).is_(None))
            .order_by(col(LocalObject.published).desc()).limit(ENTRIES))).all())
        events = {e.object_id: e for e in (await session.exec(select(Event).where(
            col(Event.object_id).in_([o.id for o in objects])))).all()}
    # The same posts as the group's page: a closed meeting's link is in no
    # local_object (private_links.py sends it without one), so none reaches a feed.
    return [(obj, event.flyer if (event := events.get(obj.id or 0)) is not None else None)
            for obj in objects]


async def _group(request: Request) -> tuple[Node, LocalActor] | None:
    node: Node = request.app.state.node
    async with node.db.read() as session:
        actor = await local_actors.get_group(session, request.path_params["username"])
    return (node, actor) if actor is not None else None


async def atom(request: Request) -> Response:
    found = await _group(request)
    if found is None:
        return Response("no such group", status_code=404, media_type="text/plain")
    node, actor = found
    entries = await _entries(node, actor)
    atom_url, _ = feed_urls(node, actor.username)
    feed = atom_root(**{XML_LANG: actor.language})
    atom_element(feed, "id", node.urls.actor(actor.username))
    atom_element(feed, "title", actor.display_name)
    atom_element(feed, "updated", iso(max((o.updated or o.published for o, _ in entries),
                                 default=actor.updated_at)))
    atom_element(feed, "link", rel="self", type=ATOM_TYPE, href=atom_url)
    atom_element(feed, "link", rel="alternate", type="text/html",
                 href=node.urls.actor(actor.username))
    author = atom_element(feed, "author")
    atom_element(author, "name", actor.display_name)
    atom_element(author, "uri", node.urls.actor(actor.username))
    for obj, flyer in entries:
        url = node.urls.object(obj.uuid)
        entry = atom_element(feed, "entry", **{XML_LANG: obj.language})
        atom_element(entry, "id", url)
        atom_element(entry, "title", _title(obj))
        atom_element(entry, "published", iso(obj.published))
        atom_element(entry, "updated", iso(obj.updated or obj.published))
        atom_element(entry, "link", rel="alternate", type="text/html", href=url,
                     hreflang=obj.language)
        for link in _alternates(obj):
            atom_element(entry, "link", rel="alternate", type="text/html", href=link["href"],
                         hreflang=link["hreflang"])
        for photo in _photos(obj, flyer, node):
            atom_element(entry, "link", rel="enclosure",
                         type=str(photo.get("mediaType", "image/jpeg")),
                         href=photo["url"], title=str(photo.get("name") or ""))
        summary = obj.summaries.get(obj.language)
        if summary:
            atom_element(entry, "summary", html_to_plain(summary))
        atom_element(entry, "content", _content(obj), type="html")
    body = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return Response(body, media_type=f"{ATOM_TYPE}; charset=utf-8", headers=FEED_HEADERS)


async def json_feed(request: Request) -> Response:
    found = await _group(request)
    if found is None:
        return Response(b'{"error": "no such group"}', status_code=404,
                        media_type="application/json")
    node, actor = found
    _, json_url = feed_urls(node, actor.username)
    items = []
    for obj, flyer in await _entries(node, actor):
        url = node.urls.object(obj.uuid)
        item: dict[str, Any] = {
            "id": url, "url": url, "title": _title(obj), "content_html": _content(obj),
            "date_published": iso(obj.published), "language": obj.language,
        }
        if obj.updated is not None:
            item["date_modified"] = iso(obj.updated)
        summary = obj.summaries.get(obj.language)
        if summary:
            item["summary"] = html_to_plain(summary)
        tags = [t["name"].lstrip("#") for t in obj.extra.get("tag", [])
                if isinstance(t, dict) and t.get("type") == "Hashtag"
                and isinstance(t.get("name"), str)]
        if tags:
            item["tags"] = tags
        photos = _photos(obj, flyer, node)
        if photos:
            item["image"] = photos[0]["url"]
            item["attachments"] = [{"url": p["url"],
                                    "mime_type": str(p.get("mediaType", "image/jpeg")),
                                    "title": str(p.get("name") or "")} for p in photos]
        alternates = _alternates(obj)
        if alternates:
            # JSON Feed has no alternates; an extension object (spec: keys
            # starting with "_") carries the other versions' links.
            item["_hambastegi"] = {"alternates": [
                {"url": a["href"], "language": a["hreflang"]} for a in alternates]}
        items.append(item)
    feed = {
        "version": JSON_FEED_VERSION, "title": actor.display_name,
        "home_page_url": node.urls.actor(actor.username), "feed_url": json_url,
        "language": actor.language,
        "authors": [{"name": actor.display_name, "url": node.urls.actor(actor.username)}],
        "items": items,
    }
    return Response(orjson.dumps(feed), media_type=f"{JSON_FEED_TYPE}; charset=utf-8",
                    headers=FEED_HEADERS)
