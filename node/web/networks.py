"""A network's public views (issue 15, point 4): the page (profile and member
directory), the ``members`` collection, and the combined feeds and calendar
of all members' upcoming calls (``?country=IR``, ``?language=fa``).

Only accepted members appear anywhere here: applications, rejections and
removals are the admins' business (FEDERATION.md, "Networks").
"""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree as ET  # we write XML, never parse it

import orjson
from sqlalchemy import func
from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from node.core import languages
from node.federation.negotiation import wants_activity_json
from node.federation.runtime import Node
from node.federation.vocabulary import iso
from node.networks import calls, members
from node.networks.directory import COUNTRY_RE
from node.storage.models import LocalActor, Network, NetworkMembership
from node.storage.states import MembershipState
from node.web import pages as web
from node.web.collections import PAGE_SIZE, _page_number, _respond
from node.web.feeds import (
    ATOM_TYPE,
    FEED_HEADERS,
    JSON_FEED_TYPE,
    JSON_FEED_VERSION,
    atom_element,
    atom_root,
)

MAX_DIRECTORY = 1000


async def _network(request: Request) -> tuple[Node, LocalActor, Network] | None:
    node: Node = request.app.state.node
    async with node.db.read() as session:
        found = await members.network_of(session, request.path_params["username"])
    return (node, *found) if found is not None else None


def _accepted(network: Network) -> Any:
    return select(NetworkMembership).where(
        NetworkMembership.network_id == network.id,
        NetworkMembership.state == MembershipState.ACCEPTED)


async def page(request: Request, actor: LocalActor, network: Network) -> Response:
    """The network's HTML page: its profile and the member directory."""
    node: Node = request.app.state.node
    async with node.db.read() as session:
        roster = list((await session.exec(_accepted(network).order_by(
            col(NetworkMembership.name)).limit(MAX_DIRECTORY))).all())
    actor_url = node.urls.actor(actor.username)
    return web.render(
        "network.html", actor=actor, handle=f"@{actor.username}@{node.settings.host}",
        actor_url=actor_url, summaries=web.versions(actor.summaries, actor.language),
        members=roster, host=node.settings.host)


async def members_collection(request: Request) -> Response:
    """``<network>/members``: the accepted members' ids (an OrderedCollection)."""
    found = await _network(request)
    if found is None:
        return JSONResponse({"error": "no such network"}, status_code=404)
    node, actor, network = found
    if not wants_activity_json(request):
        return await page(request, actor, network)
    try:
        number = _page_number(request)
    except ValueError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    accepted = _accepted(network)
    async with node.db.read() as session:
        total = int((await session.exec(
            select(func.count()).select_from(accepted.subquery()))).one())
        items: list[Any] = []
        if number is not None:
            rows = await session.exec(accepted.order_by(col(NetworkMembership.id))
                                      .offset((number - 1) * PAGE_SIZE).limit(PAGE_SIZE))
            items = [m.member_uri for m in rows.all()]
    return _respond(members.members_url(node, actor.username), total, number, items)


def _filters(request: Request) -> tuple[str | None, str | None]:
    """``?country=`` (ISO 3166-1 alpha-2) and ``?language=`` (BCP 47); ValueError if bad."""
    country = request.query_params.get("country") or None
    language = request.query_params.get("language") or None
    if country is not None:
        if not COUNTRY_RE.fullmatch(country.upper()):
            raise ValueError("country: an ISO 3166-1 alpha-2 code, e.g. IR")
        country = country.upper()
    if language is not None:
        try:
            language = languages.validate(language)
        except languages.LanguageError as exc:
            raise ValueError(f"language: {exc}") from exc
    return country, language


async def _calls(request: Request) -> tuple[Node, LocalActor, list[calls.Call]] | Response:
    found = await _network(request)
    if found is None:
        return Response("no such network", status_code=404, media_type="text/plain")
    node, actor, network = found
    try:
        country, language = _filters(request)
    except ValueError as exc:
        return Response(str(exc), status_code=400, media_type="text/plain")
    return node, actor, await calls.upcoming(node, network.id or 0, country=country,
                                             language=language)


async def calls_ics(request: Request) -> Response:
    import icalendar

    from node.calls.calendar import calendar, ics_response
    from node.storage.db import utcnow

    found = await _calls(request)
    if isinstance(found, Response):
        return found
    _, actor, upcoming = found
    items = []
    for call in upcoming:
        item = icalendar.Event()
        item.add("uid", call.uri)
        item.add("dtstamp", utcnow())
        item.add("dtstart", call.start)
        if call.end is not None:
            item.add("dtend", call.end)
        item.add("summary", call.title)
        item.add("description", f"{call.text}\n\n{call.member_name}".strip())
        item.add("status", "CANCELLED" if call.cancelled else "CONFIRMED")
        if call.place:
            item.add("location", call.place)
        if call.url:
            item.add("url", call.url)
        items.append(item)
    return ics_response(calendar(actor.display_name, items), f"{actor.username}-calls.ics")


def _feed_item(call: calls.Call) -> dict[str, Any]:
    item: dict[str, Any] = {"id": call.uri, "url": call.url or call.uri, "title": call.title,
                            "content_text": call.text, "date_published": iso(call.start),
                            "authors": [{"name": call.member_name, "url": call.member_uri}],
                            "_hambastegi": {"startTime": iso(call.start),
                                            "country": call.country,
                                            "languages": call.languages}}
    if call.languages:
        item["language"] = call.languages[0]
    return item


async def calls_json(request: Request) -> Response:
    found = await _calls(request)
    if isinstance(found, Response):
        return found
    node, actor, upcoming = found
    actor_url = node.urls.actor(actor.username)
    feed = {"version": JSON_FEED_VERSION, "title": actor.display_name,
            "home_page_url": actor_url, "feed_url": str(request.url),
            "language": actor.language, "items": [_feed_item(c) for c in upcoming]}
    return Response(orjson.dumps(feed), media_type=f"{JSON_FEED_TYPE}; charset=utf-8",
                    headers=FEED_HEADERS)


async def calls_atom(request: Request) -> Response:
    found = await _calls(request)
    if isinstance(found, Response):
        return found
    node, actor, upcoming = found
    actor_url = node.urls.actor(actor.username)
    feed = atom_root()
    atom_element(feed, "id", actor_url + "/calls.atom")
    atom_element(feed, "title", actor.display_name)
    atom_element(feed, "updated", iso(actor.updated_at))
    atom_element(feed, "link", rel="self", type=ATOM_TYPE, href=str(request.url))
    atom_element(feed, "link", rel="alternate", type="text/html", href=actor_url)
    for call in upcoming:
        entry = atom_element(feed, "entry")
        atom_element(entry, "id", call.uri)
        atom_element(entry, "title", call.title)
        atom_element(entry, "updated", iso(call.start))
        atom_element(entry, "link", rel="alternate", type="text/html", href=call.url or call.uri)
        author = atom_element(entry, "author")
        atom_element(author, "name", call.member_name)
        atom_element(author, "uri", call.member_uri)
        atom_element(entry, "content", call.text, type="text")
    body = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return Response(body, media_type=f"{ATOM_TYPE}; charset=utf-8", headers=FEED_HEADERS)
