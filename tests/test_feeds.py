"""Atom and JSON Feed per group and per language channel, read back by standard parsers."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import feedparser  # type: ignore[import-untyped]
import httpx
import jsonschema

from node.calls import operations as calls
from node.groups import operations
from node.news import channels
from node.news import operations as news
from tests.conftest import LiveNode
from tests.test_photos import _upload, photo

JSON_FEED_SCHEMA = json.loads((Path(__file__).parent / "jsonfeed-1.1.schema.json").read_text())


async def _get(url: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(url)


async def _koeln_with_news(live: LiveNode) -> tuple[str, dict[str, Any]]:
    await operations.create_group(live.node, "koeln", display_name="Köln", language="de")
    token = await operations.create_token(live.node, "koeln", "koeln")
    media = (await _upload(live, photo(800, 600), token=token)).json()
    await channels.enable(live.node, "koeln", ["fa"])
    await calls.create_call(live.node, "koeln", {
        "language": "de", "title": {"de": "Kundgebung"}, "text": {"de": "Kommt alle."},
        "start": "2027-06-08T12:00", "timezone": "Europe/Berlin",
        "place": {"name": "Domplatte", "city": "Köln"}})
    item_id = await news.create_item(live.node, "koeln", {
        "language": "fa",
        "versions": {"fa": {"title": "اعتصاب", "text": "کارگران **در اعتصاب** هستند."},
                     "de": {"title": "Streik", "text": "Die Arbeiter streiken."}},
        "photos": [{"media": media["name"], "alt": {"fa": "کارگران", "de": "Arbeiter"}}],
        "hashtags": ["Streik"]})
    return item_id, media


async def test_group_page_links_both_feeds_and_atom_reads_back_with_languages_links_photos(
        live_node: LiveNode) -> None:
    item_id, media = await _koeln_with_news(live_node)
    page = (await _get(live_node.url("/groups/koeln"))).text
    atom_url = re.search(r'<link rel="alternate" type="application/atom\+xml" href="([^"]+)"',
                         page)
    json_url = re.search(r'<link rel="alternate" type="application/feed\+json" href="([^"]+)"',
                         page)
    assert atom_url and json_url
    response = await _get(atom_url.group(1))
    assert response.headers["content-type"].startswith("application/atom+xml")
    parsed = feedparser.parse(response.content)
    assert not parsed.bozo, parsed.bozo_exception
    assert parsed.feed.language == "de" and parsed.feed.title == "Köln"
    entry, event = parsed.entries  # newest first: the item, then the call
    assert entry.id == item_id and entry.title == "اعتصاب"
    # feedparser reports the xml:lang in force on each text construct.
    assert entry.title_detail.language == "fa" and entry.content[0].language == "fa"
    assert "<strong>در اعتصاب</strong>" in entry.content[0].value  # full sanitised HTML
    assert {(link.rel, link.get("hreflang"), link.href) for link in entry.links} >= {
        ("alternate", "fa", item_id), ("alternate", "de", f"{item_id}#v-de"),
        ("enclosure", None, media["url"])}
    assert [e.type for e in entry.enclosures] == ["image/jpeg"]
    assert event.title == "Kundgebung" and event.content[0].language == "de"


async def test_json_feed_is_valid_and_a_channel_feed_holds_only_its_language(
        live_node: LiveNode) -> None:
    item_id, media = await _koeln_with_news(live_node)
    response = await _get(live_node.url("/groups/koeln/feed.json"))
    assert response.headers["content-type"].startswith("application/feed+json")
    feed = response.json()
    jsonschema.validate(feed, JSON_FEED_SCHEMA)
    item = feed["items"][0]
    assert item["id"] == item_id and item["language"] == "fa" and item["tags"] == ["Streik"]
    assert item["attachments"] == [{"url": media["url"], "mime_type": "image/jpeg",
                                    "title": "کارگران"}]
    assert item["_hambastegi"]["alternates"] == [{"url": f"{item_id}#v-de", "language": "de"}]
    assert "Arbeiter streiken" not in item["content_html"]  # the primary version only

    channel = (await _get(live_node.url("/groups/koeln_fa/feed.json"))).json()
    jsonschema.validate(channel, JSON_FEED_SCHEMA)
    assert channel["language"] == "fa"
    assert [i["language"] for i in channel["items"]] == ["fa"]  # the German call is not there
    assert "Arbeiter" not in json.dumps(channel, ensure_ascii=False)
    assert channel["items"][0]["attachments"][0]["title"] == "کارگران"
    atom = feedparser.parse((await _get(live_node.url("/groups/koeln_fa/feed.atom"))).content)
    assert [e.content[0].language for e in atom.entries] == ["fa"]
    assert (await _get(live_node.url("/groups/nobody/feed.atom"))).status_code == 404
