"""The node's campaign list as a page, Atom and JSON Feed (issue 16, point 5).

``/campaigns`` lists the public campaigns of the node's groups, sortable by
status or days in detention (``?sort=status|days``) and filterable by country
(``?country=IR``); ``/campaigns/feed.atom`` and ``/campaigns/feed.json`` carry
the same list. Only what ``consent.may_see`` lets the public read is listed
(listing.py), with names already under consent (initials).
"""

from __future__ import annotations

import re
from typing import Any
from xml.etree import ElementTree as ET  # we write XML, never parse it

import orjson
from starlette.requests import Request
from starlette.responses import Response

from node.campaigns import listing
from node.federation.runtime import Node
from node.web import pages
from node.web.feeds import ATOM_NS, ATOM_TYPE, FEED_HEADERS, JSON_FEED_TYPE, JSON_FEED_VERSION

COUNTRY_RE = re.compile(r"^[A-Za-z]{2}$")


def _query(request: Request) -> tuple[str | None, str]:
    country = request.query_params.get("country") or None
    if country is not None and not COUNTRY_RE.fullmatch(country):
        country = "--"  # matches nothing: a bad filter lists nothing, it never errors out
    sort = "days" if request.query_params.get("sort") == "days" else "status"
    return country, sort


async def _rows(request: Request) -> tuple[Node, list[dict[str, Any]], str | None, str]:
    node: Node = request.app.state.node
    country, sort = _query(request)
    return node, await listing.listing(node, country=country, sort=sort), country, sort


def _(text: str) -> str:
    """Identity until the page strings get catalogues (the public pages' i18n)."""
    return text


async def page(request: Request) -> Response:
    node, rows, country, sort = await _rows(request)
    return pages.render("campaigns.html", campaigns=rows, country=country or "", sort=sort,
                        host=node.settings.host, _=_,
                        atom_url=node.urls.base + "/campaigns/feed.atom",
                        json_url=node.urls.base + "/campaigns/feed.json")


async def atom(request: Request) -> Response:
    node, rows, _c, _s = await _rows(request)
    ET.register_namespace("", ATOM_NS)

    def sub(parent: ET.Element, tag: str, text: str | None = None,
            **attrs: str) -> ET.Element:
        element = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
        if text is not None:
            element.text = text
        return element

    feed = ET.Element(f"{{{ATOM_NS}}}feed")
    sub(feed, "id", node.urls.base + "/campaigns")
    sub(feed, "title", f"Campaigns — {node.settings.host}")
    sub(feed, "updated", max((r["updated"] for r in rows), default="1970-01-01T00:00:00Z"))
    sub(feed, "link", rel="self", type=ATOM_TYPE, href=node.urls.base + "/campaigns/feed.atom")
    author = sub(feed, "author")
    sub(author, "name", node.settings.host)
    for row in rows:
        entry = sub(feed, "entry", **{"{http://www.w3.org/XML/1998/namespace}lang":
                                      row["language"]})
        sub(entry, "id", row["id"])
        sub(entry, "title", row["name"])
        sub(entry, "updated", row["updated"])
        sub(entry, "link", rel="alternate", type="text/html", href=row["id"])
        sub(entry, "summary", row["summary"])
    body = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return Response(body, media_type=f"{ATOM_TYPE}; charset=utf-8", headers=FEED_HEADERS)


async def json_feed(request: Request) -> Response:
    node, rows, _c, _s = await _rows(request)
    feed = {
        "version": JSON_FEED_VERSION, "title": f"Campaigns — {node.settings.host}",
        "home_page_url": node.urls.base + "/campaigns",
        "feed_url": node.urls.base + "/campaigns/feed.json",
        "items": [{"id": r["id"], "url": r["id"], "title": r["name"],
                   "summary": r["summary"], "content_text": r["summary"],
                   "date_modified": r["updated"], "language": r["language"],
                   "_hambastegi": {"status": r["status"], "days_in_detention": r["days"],
                                   "country": r["country"]}} for r in rows],
    }
    return Response(orjson.dumps(feed), media_type=f"{JSON_FEED_TYPE}; charset=utf-8",
                    headers=FEED_HEADERS)
