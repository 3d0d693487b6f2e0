"""Campaign lists as pages, Atom and JSON Feed (issue 16, point 5).

- ``/campaigns``: the node's own public campaigns and those of the actors our
  groups and networks follow (campaigns/listing.py, federated.py);
- ``/groups/<group>/campaigns``: one group's campaigns; for a network, its
  accepted members' campaigns, local and remote;
- ``…/feed.atom``, ``…/feed.json`` (``/campaigns``) and ``campaigns.atom``,
  ``campaigns.json`` (``/groups/<name>/``) carry the same rows.

``?sort=status|days`` and ``?country=IR``: anything else is ignored (a bad sort)
or matches nothing (a bad country), never an error. Names are already under
consent (initials) in every row; remote rows are only those addressed to the
public.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree as ET  # we write XML, never parse it

import orjson
from starlette.requests import Request
from starlette.responses import Response

from node.campaigns import listing
from node.federation import local_actors
from node.federation.runtime import Node
from node.networks import members as networks
from node.storage.models import LocalActor
from node.web import pages
from node.web.feeds import (
    ATOM_TYPE,
    FEED_HEADERS,
    JSON_FEED_TYPE,
    JSON_FEED_VERSION,
    atom_element,
    atom_root,
)
from node.web.i18n import N_

COUNTRY_RE = re.compile(r"^[A-Za-z]{2}$")
NO_MATCH = "--"
LIST_TTL = 30.0


@dataclass(frozen=True)
class Query:
    country: str | None  # upper case; NO_MATCH for a malformed one
    sort: str


def query_of(request: Request) -> Query:
    country = request.query_params.get("country") or None
    if country is not None:
        # A bad filter lists nothing, it never errors out.
        country = country.upper() if COUNTRY_RE.fullmatch(country) else NO_MATCH
    sort = request.query_params.get("sort")
    return Query(country, sort if sort in listing.SORTS else "status")


@dataclass(frozen=True)
class Scope:
    """Which list: the node's (``actor`` None), a group's or a network's."""

    title: str
    home_url: str
    atom_url: str
    json_url: str
    actor: LocalActor | None = None
    network_id: int | None = None


def node_scope(node: Node) -> Scope:
    base = node.urls.base
    return Scope(f"Campaigns — {node.settings.host}", base + "/campaigns",
                 base + "/campaigns/feed.atom", base + "/campaigns/feed.json")


async def group_scope(node: Node, username: str) -> Scope | None:
    async with node.db.read() as session:
        actor = await local_actors.get_group(session, username)
        network = await networks.network_of(session, username)
    if actor is None:
        return None
    url = node.urls.actor(actor.username) + "/campaigns"
    return Scope(f"Campaigns — {actor.display_name}", url, url + ".atom", url + ".json",
                 actor=actor, network_id=network[1].id if network is not None else None)


async def rows_of(node: Node, scope: Scope, query: Query) -> list[dict[str, Any]]:
    if scope.network_id is not None:
        return await listing.network_listing(node, scope.network_id, country=query.country,
                                             sort=query.sort)
    if scope.actor is not None:
        return await listing.listing(node, country=query.country, sort=query.sort,
                                     group=scope.actor.username)
    return await listing.listing(node, country=query.country, sort=query.sort,
                                 federated_rows=True)


async def _respond(request: Request, node: Node, scope: Scope) -> Response:
    query = query_of(request)
    language, remember = pages.reader_language(
        request, scope.actor.language if scope.actor is not None else None)
    # Cached briefly like a group's page (any change clears it; the days move with the
    # clock). The key has only normalised parts, so odd query strings add no entries.
    key = ("campaign-list", scope.home_url, query.country, query.sort, language)
    body = node.doc_cache.get(key)
    if body is None:
        everything = await rows_of(node, scope, Query(None, query.sort))
        rows = listing.arrange(everything, country=query.country, sort=query.sort)
        countries = sorted({r["country"] for r in everything if r["country"]})
        response = pages.render(
            "campaigns.html", language=language,
            campaigns=rows, country=query.country if query.country != NO_MATCH else "",
            countries=countries, sort=query.sort, host=node.settings.host, scope=scope,
            group=pages.group_entry(node, scope.actor) if scope.actor is not None else None,
            is_network=scope.network_id is not None,
            page_url=scope.home_url, atom_url=scope.atom_url, json_url=scope.json_url)
        body = node.doc_cache.put_raw(key, bytes(response.body), ttl=LIST_TTL)
    out = pages.html_response(body)
    if remember:
        pages.remember_language(out, language)
    return out


async def page(request: Request) -> Response:
    node: Node = request.app.state.node
    return await _respond(request, node, node_scope(node))


async def group_page(request: Request) -> Response:
    node: Node = request.app.state.node
    scope = await group_scope(node, request.path_params["username"])
    if scope is None:
        return pages.render_error(request, 404, N_("no such group"))
    return await _respond(request, node, scope)


def atom_response(scope: Scope, rows: list[dict[str, Any]]) -> Response:
    feed = atom_root()
    atom_element(feed, "id", scope.home_url)
    atom_element(feed, "title", scope.title)
    atom_element(feed, "updated", max((r["updated"] for r in rows), default="1970-01-01T00:00:00Z"))
    atom_element(feed, "link", rel="self", type=ATOM_TYPE, href=scope.atom_url)
    atom_element(feed, "link", rel="alternate", type="text/html", href=scope.home_url)
    author = atom_element(feed, "author")
    atom_element(author, "name", scope.title)
    for row in rows:
        entry = atom_element(feed, "entry", **{"{http://www.w3.org/XML/1998/namespace}lang":
                                      row["language"]})
        atom_element(entry, "id", row["id"])
        atom_element(entry, "title", row["name"])
        atom_element(entry, "updated", row["updated"])
        atom_element(entry, "link", rel="alternate", type="text/html", href=row["url"])
        who = atom_element(entry, "author")
        atom_element(who, "name", f"{row['group_name']} ({row['host']})")
        atom_element(who, "uri", row["group_url"])
        atom_element(entry, "summary", row["summary"])
    body = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return Response(body, media_type=f"{ATOM_TYPE}; charset=utf-8", headers=FEED_HEADERS)


def json_response(scope: Scope, rows: list[dict[str, Any]]) -> Response:
    feed = {
        "version": JSON_FEED_VERSION, "title": scope.title,
        "home_page_url": scope.home_url, "feed_url": scope.json_url,
        "items": [{"id": r["id"], "url": r["url"], "title": r["name"],
                   "summary": r["summary"], "content_text": r["summary"],
                   "date_modified": r["updated"], "language": r["language"],
                   "authors": [{"name": f"{r['group_name']} ({r['host']})",
                                "url": r["group_url"]}],
                   "_hambastegi": {"status": r["status"], "days_in_detention": r["days"],
                                   "country": r["country"], "remote": r["remote"]}}
                  for r in rows],
    }
    return Response(orjson.dumps(feed), media_type=f"{JSON_FEED_TYPE}; charset=utf-8",
                    headers=FEED_HEADERS)


async def atom(request: Request) -> Response:
    node: Node = request.app.state.node
    scope = node_scope(node)
    return atom_response(scope, await rows_of(node, scope, query_of(request)))


async def json_feed(request: Request) -> Response:
    node: Node = request.app.state.node
    scope = node_scope(node)
    return json_response(scope, await rows_of(node, scope, query_of(request)))


async def _group_feed(request: Request, kind: str) -> Response:
    node: Node = request.app.state.node
    scope = await group_scope(node, request.path_params["username"])
    if scope is None:
        return Response("no such group", status_code=404, media_type="text/plain")
    rows = await rows_of(node, scope, query_of(request))
    return atom_response(scope, rows) if kind == "atom" else json_response(scope, rows)


async def group_atom(request: Request) -> Response:
    return await _group_feed(request, "atom")


async def group_json(request: Request) -> Response:
    return await _group_feed(request, "json")
