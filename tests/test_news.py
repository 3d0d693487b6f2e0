"""News items in many languages (issue 13): input, rendering, the wire, channels, CLI, API."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from sqlalchemy import func
from sqlmodel import select

from node.groups import operations
from node.news import channels
from node.news import operations as news
from node.news.items import NOTE_LIMIT, NewsError, parse_input, render_markdown
from node.storage.models import Activity, Fanout, LocalActor, LocalObject, NewsCopy, NewsItem
from tests.conftest import DatabaseFactory, LiveNode, cli_environment, run_cli
from tests.test_photos import _upload, photo

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
AS = {"Accept": "application/activity+json"}
LONG_FA = "کارگران پتروشیمی در ماهشهر برای دومین هفته در اعتصاب هستند. " * 12


def schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / name).read_text())


def strike_item(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "language": "fa",
        "versions": {"fa": {"title": "اعتصاب در ماهشهر", "text": LONG_FA,
                            "summary": "اعتصاب کارگران پتروشیمی ادامه دارد."}},
        "hashtags": ["اعتصاب", "Mahshahr"],
        "sources": ["https://news.example/strike"],
        "country": "IR",
        "sectors": ["petrochemicals"],
    }
    body.update(overrides)
    return body


# --- input ---------------------------------------------------------------------------


@pytest.mark.parametrize("override, message", [
    ({"language": "xx-invalid-tag"}, "'xx-invalid-tag'"),
    ({"language": ""}, "invalid language tag ''"),
    ({"versions": {"fa": {"text": "x"}, "zz9": {"text": "y"}}}, "'zz9'"),
    ({"versions": {}}, "needs some text"),
    ({"versions": None}, "needs some text"),
    ({"versions": {"fa": {"title": "only a title"}}}, "versions[fa].text"),
    ({"versions": {"fa": {"text": "   "}}}, "versions[fa].text"),
    ({"versions": {"fa": {"text": "<script>alert(1)</script>"}}}, "no text left"),
    ({"versions": {"de": {"text": "nur deutsch"}}}, "item's language (fa)"),
    ({"versions": {"fa": {"text": "x", "colour": "red"}}}, "unknown field 'colour'"),
    ({"versions": {"fa": {"text": "x", "title": "a\x00b"}}}, "a control character (U+0000)"),
    ({"versions": {"fa": {"text": "x" * 50_001}}}, "longer than"),
    ({"country": "XX"}, "ISO 3166"),
    ({"country": "EU"}, "ISO 3166"),
    ({"country": "Iran"}, "ISO 3166"),
    ({"hashtags": ["123"]}, "hashtag"),
    ({"sources": ["javascript:alert(1)"]}, "sources must be an http(s) URL"),
    ({"sectors": ["Oil Sector"]}, "sector"),
    ({"photos": [{"media": f"p{i}"} for i in range(5)]}, "photos must be a list of at most 4"),
    ({"photos": [{"media": "p", "alt": {"bad tag": "x"}}]}, "'bad tag'"),
    ({"flyer": "x"}, "unknown field 'flyer'"),
])
def test_bad_items_are_refused_with_an_error_naming_the_field(override: dict[str, Any],
                                                              message: str) -> None:
    with pytest.raises(NewsError) as raised:
        parse_input(strike_item(**override), "fa")
    assert message in str(raised.value)


HOSTILE = [
    "<script>alert(1)</script>text",
    '<img src=x onerror="alert(1)">text',
    "[link](javascript:alert(1)) text",
    '<a href="javascript:alert(1)">x</a> text',
    '<a href="data:text/html;base64,PHNjcmlwdD4=">x</a> text',
    "![x](data:image/svg+xml;base64,PHN2Zz4=) text",
    '<iframe src="https://evil.example"></iframe>text',
    '<p style="position:fixed">x</p><style>body{}</style>text',
    '<svg onload="alert(1)"><script>alert(1)</script></svg>text',
    '<p onclick="alert(1)">x</p> text',
    '<a href="JaVaScRiPt:alert(1)">x</a> text',
]


@pytest.mark.parametrize("markdown", HOSTILE)
def test_hostile_markdown_and_html_are_cut_to_the_allowlist(markdown: str) -> None:
    out = render_markdown(markdown).lower()
    for bad in ("<script", "onerror=", "onload=", "onclick=", "<iframe", "style=", "<style",
                "<svg", "<img", "alert(1)</"):
        assert bad not in out, (bad, out)
    # A refused link may stay as text; no attribute ever points at a script or data.
    assert not re.search(r"(href|src)\s*=\s*[\"']?\s*(javascript|data):", out), out
    assert "text" in out


def test_markdown_keeps_what_the_allowlist_allows() -> None:
    out = render_markdown("# Streik\n\n**fett** und *kursiv*, [Quelle](https://a.example/x)"
                          "\n\n- eins\n- zwei\n\n~~alt~~")
    assert "<h1>Streik</h1>" in out and "<strong>fett</strong>" in out
    assert '<a href="https://a.example/x" rel="nofollow noopener noreferrer">Quelle</a>' in out
    assert "<li>eins</li>" in out and "<s>alt</s>" in out
    assert ">\n<" not in out  # Mastodon keeps newlines between blocks as blank lines


# --- the wire ------------------------------------------------------------------------


async def _token(live: LiveNode, group: str = "koeln", language: str = "fa") -> str:
    await operations.create_group(live.node, group, display_name="Köln solidarisch",
                                  language=language)
    return await operations.create_token(live.node, group, group)


async def _api(live: LiveNode, method: str, path: str, token: str,
               body: Any = None) -> httpx.Response:
    async with httpx.AsyncClient(base_url=live.base_url) as client:
        return await client.request(method, path, json=body,
                                    headers={"Authorization": f"Bearer {token}"})


async def _doc(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        response = await client.get(url, headers=AS)
    assert response.status_code == 200, response.text
    doc: dict[str, Any] = response.json()
    return doc


async def _counts(live: LiveNode) -> tuple[int, ...]:
    async with live.node.db.read() as session:
        return tuple([int((await session.exec(select(func.count()).select_from(m))).one())
                      for m in (LocalObject, NewsItem, Activity, Fanout, NewsCopy)])


async def test_a_long_titled_item_is_an_article_with_every_version_primary_first(
        live_node: LiveNode) -> None:
    token = await _token(live_node)
    uploaded = await _upload(live_node, photo(1600, 1200), token=token,
                             query="?focus=0.25,-0.5")
    media = uploaded.json()
    body = strike_item(photos=[{"media": media["name"],
                                "alt": {"fa": "کارگران در برابر کارخانه"}}])
    body["versions"]["de"] = {"title": "Streik in Mahshahr", "text": "Die Arbeiter streiken.",
                              "alt": ["Arbeiter vor der Fabrik"]}
    created = await _api(live_node, "POST", "/api/v1/groups/koeln/news", token, body)
    assert created.status_code == 201, created.text
    item_id = created.json()["id"]
    doc = await _doc(item_id)
    jsonschema.validate(doc, schema("news.schema.json"))
    assert doc["type"] == "Article"
    assert list(doc["contentMap"]) == ["fa", "de"]  # Mastodon reads the first key
    assert doc["content"] == doc["contentMap"]["fa"]
    assert doc["name"] == "اعتصاب در ماهشهر" and list(doc["nameMap"]) == ["fa", "de"]
    assert doc["summary"] == "اعتصاب کارگران پتروشیمی ادامه دارد."
    assert doc["summaryMap"]["de"].startswith("Die Arbeiter streiken.")  # an excerpt
    assert doc["url"] == [
        {"type": "Link", "href": item_id, "mediaType": "text/html", "hreflang": "fa",
         "rel": "canonical"},
        {"type": "Link", "href": f"{item_id}#v-de", "mediaType": "text/html",
         "hreflang": "de", "rel": "alternate"}]
    assert doc["attachment"] == [{
        "type": "Image", "mediaType": "image/jpeg", "url": media["url"],
        "name": "کارگران در برابر کارخانه", "blurhash": media["blurhash"],
        "width": 1600, "height": 1200, "focalPoint": [0.25, -0.5]}]
    assert doc["country"] == "IR" and doc["sectors"] == ["petrochemicals"]
    assert doc["sources"] == ["https://news.example/strike"]
    assert {t["name"] for t in doc["tag"]} == {"#اعتصاب", "#Mahshahr"}
    # The page: each version in its own container with lang and dir.
    async with httpx.AsyncClient() as client:
        page = (await client.get(item_id)).text
    assert 'id="v-fa" lang="fa" dir="rtl"' in page and 'id="v-de" lang="de" dir="ltr"' in page
    # The date in the group's language (the page's default): Solar Hijri, Persian digits.
    shown = re.search(r'<time datetime="[^"]+">([^<]+)</time>', page)
    assert shown and re.search("[\u06F0-\u06F9]", shown.group(1)), page


async def test_a_short_item_is_a_note_whose_content_leads_with_the_title(
        live_node: LiveNode) -> None:
    token = await _token(live_node)
    created = await _api(live_node, "POST", "/api/v1/groups/koeln/news", token, {
        "language": "de", "versions": {"de": {"title": "Kurz", "text": "Streik *heute*.",
                                              "summary": "Gewalt"}}})
    assert created.status_code == 201, created.text
    doc = await _doc(created.json()["id"])
    jsonschema.validate(doc, schema("news.schema.json"))
    assert doc["type"] == "Note"
    assert doc["content"].startswith("<p><strong>Kurz</strong></p><p>Streik <em>heute</em>.")
    assert doc["summary"] == "Gewalt"  # a Note's summary is its content warning
    untitled = await _api(live_node, "POST", "/api/v1/groups/koeln/news", token, {
        "language": "de", "versions": {"de": {"text": "lang " * NOTE_LIMIT}}})
    untitled_doc = await _doc(untitled.json()["id"])
    assert untitled_doc["type"] == "Note" and "summary" not in untitled_doc


async def test_added_and_corrected_versions_federate_as_updates_and_duplicates_are_refused(
        live_node: LiveNode) -> None:
    token = await _token(live_node)
    item_id = (await _api(live_node, "POST", "/api/v1/groups/koeln/news", token,
                          strike_item())).json()["id"]
    uuid = item_id.rsplit("/", 1)[1]
    added = await _api(live_node, "POST", f"/api/v1/news/{uuid}/versions", token,
                       {"language": "en", "title": "Strike", "text": "Workers strike."})
    assert added.status_code == 201, added.text
    before = await _counts(live_node)
    again = await _api(live_node, "POST", f"/api/v1/news/{uuid}/versions", token,
                       {"language": "en", "title": "Strike", "text": "Other text."})
    assert again.status_code == 409 and "already has a version in en" in again.json()["error"]
    bad_tag = await _api(live_node, "POST", f"/api/v1/news/{uuid}/versions", token,
                         {"language": "english", "text": "x"})
    assert bad_tag.status_code == 400 and "'english'" in bad_tag.json()["error"]
    untagged = await _api(live_node, "POST", f"/api/v1/news/{uuid}/versions", token,
                          {"text": "x"})
    assert untagged.status_code == 400 and "language tag is required" in untagged.json()["error"]
    missing = await _api(live_node, "PUT", f"/api/v1/news/{uuid}/versions/de", token,
                         {"text": "x"})
    assert missing.status_code == 404
    assert await _counts(live_node) == before  # nothing stored, nothing queued
    as_note = await _api(live_node, "PATCH", f"/api/v1/objects/{uuid}", token, {"text": "x"})
    assert as_note.status_code == 400 and "news item" in as_note.json()["error"]
    assert await _counts(live_node) == before
    fixed = await _api(live_node, "PUT", f"/api/v1/news/{uuid}/versions/en", token,
                       {"title": "Strike", "text": "Workers **still** strike."})
    assert fixed.status_code == 200, fixed.text
    async with live_node.node.db.read() as session:
        kinds = [a.activity_type for a in (await session.exec(
            select(Activity).where(Activity.object_uri == item_id)
            .order_by(Activity.id))).all()]  # type: ignore[arg-type]
    assert kinds == ["Create", "Update", "Update"]
    doc = await _doc(item_id)
    assert list(doc["contentMap"]) == ["fa", "en"]
    assert "<strong>still</strong>" in doc["contentMap"]["en"]


async def test_bad_api_bodies_are_4xx_and_store_nothing(live_node: LiveNode) -> None:
    token = await _token(live_node)
    before = await _counts(live_node)
    for body, status, words in [
        ({"versions": {"fa": {"text": ""}}}, 400, "versions[fa].text"),
        ({"language": "ف", "versions": {"ف": {"text": "x"}}}, 400, "invalid language tag"),
        ({"versions": {"fa": {"text": "x"}}, "photos": [{"media": "nope.jpg"}]}, 400,
         "no uploaded image named 'nope.jpg'"),
        (["not", "an", "object"], 400, ""),
    ]:
        response = await _api(live_node, "POST", "/api/v1/groups/koeln/news", token, body)
        assert response.status_code == status, response.text
        assert words in response.json()["error"]
    other = await _token(live_node, "teheran")
    theirs = await _api(live_node, "POST", "/api/v1/groups/koeln/news", other, strike_item())
    assert theirs.status_code == 403
    assert await _counts(live_node) == before


async def test_channels_get_only_their_language_and_deletes_reach_every_copy(
        live_node: LiveNode) -> None:
    token = await _token(live_node)
    enabled = await _api(live_node, "POST", "/api/v1/groups/koeln/channels", token,
                         {"languages": ["fa", "de", "en"]})
    assert enabled.status_code == 201, enabled.text
    base = live_node.base_url
    assert enabled.json()["channels"] == [f"{base}/groups/koeln_{t}" for t in ("fa", "de", "en")]
    channel = await _doc(f"{base}/groups/koeln_fa")
    assert channel["type"] == "Group" and channel["preferredUsername"] == "koeln_fa"
    assert f"{base}/groups/koeln" in channel["summary"]  # whose channel it is
    body = strike_item()
    body["versions"]["de"] = {"title": "Streik in Mahshahr", "text": "Die Arbeiter streiken."}
    item_id = (await _api(live_node, "POST", "/api/v1/groups/koeln/news", token,
                          body)).json()["id"]
    async with live_node.node.db.read() as session:
        copies = (await session.exec(select(LocalObject, LocalActor).join(
            LocalActor, LocalActor.id == LocalObject.local_actor_id)  # type: ignore[arg-type]
            .where(LocalActor.username != "koeln"))).all()
    by_channel = {actor.username: obj for obj, actor in copies}
    assert set(by_channel) == {"koeln_fa", "koeln_de"}  # no English version: nothing to en
    fa = await _doc(f"{base}/objects/{by_channel['koeln_fa'].uuid}")
    jsonschema.validate(fa, schema("news.schema.json"))
    assert fa["attributedTo"] == f"{base}/groups/koeln_fa"
    assert list(fa["contentMap"]) == ["fa"] and list(fa["nameMap"]) == ["fa"]
    assert "Arbeiter" not in json.dumps(fa, ensure_ascii=False)
    assert fa["url"][1] == {"type": "Link", "href": f"{item_id}#v-de", "mediaType": "text/html",
                            "hreflang": "de", "rel": "alternate"}
    de = await _doc(f"{base}/objects/{by_channel['koeln_de'].uuid}")
    assert de["type"] == "Note" and list(de["contentMap"]) == ["de"]  # short: a Note

    # `delete` through the generic route takes the copies with the item.
    deleted = await _api(live_node, "DELETE", f"/api/v1/objects/{item_id.rsplit('/', 1)[1]}",
                         token)
    assert deleted.status_code == 200, deleted.text
    async with httpx.AsyncClient() as client:
        for url in (item_id, f"{base}/objects/{by_channel['koeln_fa'].uuid}",
                    f"{base}/objects/{by_channel['koeln_de'].uuid}"):
            gone = await client.get(url, headers=AS)
            assert gone.status_code == 410 and gone.json()["type"] == "Tombstone"
    async with live_node.node.db.read() as session:
        deletes = (await session.exec(select(Activity).where(
            Activity.activity_type == "Delete"))).all()
    assert len(deletes) == 3


async def test_a_channel_cannot_publish_and_a_name_in_use_is_refused(
        live_node: LiveNode) -> None:
    await _token(live_node)
    await channels.enable(live_node.node, "koeln", ["fa"])
    with pytest.raises(operations.OperationError, match="is a language channel"):
        await news.create_item(live_node.node, "koeln_fa", strike_item())
    await operations.create_group(live_node.node, "bonn_de", display_name="x", language="de")
    await operations.create_group(live_node.node, "bonn", display_name="Bonn", language="de")
    with pytest.raises(operations.OperationError, match="already exists"):
        await channels.enable(live_node.node, "bonn", ["de"])
    with pytest.raises(operations.OperationError, match="'de_DE'"):
        await channels.enable(live_node.node, "bonn", ["de_DE"])


# --- the CLI -------------------------------------------------------------------------


async def test_cli_publishes_with_flags_adds_a_version_and_refuses_bad_input_in_one_line(
        tmp_path: Path, databases: DatabaseFactory) -> None:
    env = await cli_environment(tmp_path, databases)
    assert run_cli(env, "group", "create", "koeln", "--language", "fa").returncode == 0
    bad = run_cli(env, "publish", "news", "koeln", "--lang", "farsi", "--text", "x")
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.count("\n") == 1 and "'farsi'" in bad.stderr
    # Without --lang the texts are in the group's language (fa).
    empty = run_cli(env, "publish", "news", "koeln", "--title", "only a title")
    assert empty.returncode == 1 and "versions[fa].text must be non-empty" in empty.stderr
    published = run_cli(env, "publish", "news", "koeln", "--lang", "fa", "--title", "اعتصاب",
                        "--text", "کارگران در اعتصاب هستند.", "--title-in", "de=Streik",
                        "--text-in", "de=Die Arbeiter streiken.", "--hashtag", "Streik",
                        "--country", "ir", "--sector", "oil",
                        "--source", "https://news.example/1")
    assert published.returncode == 0, published.stderr
    item_id = published.stdout.strip()
    assert item_id.startswith("https://node.example/objects/")
    added = run_cli(env, "news", "add-version", item_id, "--lang", "en", "--title", "Strike",
                    "--text", "Workers strike.")
    assert added.returncode == 0, added.stderr
    twice = run_cli(env, "news", "add-version", item_id, "--lang", "en", "--text", "again")
    assert twice.returncode == 1 and "already has a version in en" in twice.stderr
    source = tmp_path / "item.json"
    source.write_text(json.dumps({"language": "fa", "versions": {
        "fa": {"text": "فقط فارسی"}}}), encoding="utf-8")
    edited = run_cli(env, "edit", "news", item_id, "--json", str(source))
    assert edited.returncode == 0, edited.stderr
    deleted = run_cli(env, "delete", item_id)
    assert deleted.returncode == 0 and deleted.stdout.strip() == item_id
    enabled = run_cli(env, "channel", "enable", "koeln", "fa", "de")
    assert enabled.stdout.split() == ["https://node.example/groups/koeln_fa",
                                      "https://node.example/groups/koeln_de"]
    listed = run_cli(env, "channel", "list", "koeln")
    assert listed.stdout.splitlines() == ["de\thttps://node.example/groups/koeln_de",
                                          "fa\thttps://node.example/groups/koeln_fa"]


async def test_action_calls_reach_channels_as_events_of_their_own_in_one_language(
        live_node: LiveNode) -> None:
    from node.calls import operations as calls

    token = await _token(live_node)
    await channels.enable(live_node.node, "koeln", ["fa", "tr"])
    call_id = await calls.create_call(live_node.node, "koeln", {
        "language": "fa", "title": {"fa": "تجمع در برابر سازمان جهانی کار",
                                    "de": "Kundgebung vor der ILO"},
        "text": {"fa": "همه بیایید.", "de": "Kommt alle."},
        "start": "2027-06-08T12:00", "timezone": "Europe/Zurich",
        "place": {"name": "Place des Nations", "city": "Genève"}})
    base = live_node.base_url
    async with live_node.node.db.read() as session:
        copies = (await session.exec(select(LocalObject, LocalActor).join(
            LocalActor, LocalActor.id == LocalObject.local_actor_id)  # type: ignore[arg-type]
            .where(LocalActor.username != "koeln"))).all()
    assert [(a.username, o.object_type) for o, a in copies] == [("koeln_fa", "Event")]
    copy_id = f"{base}/objects/{copies[0][0].uuid}"
    doc = await _doc(copy_id)
    jsonschema.validate(doc, schema("event.schema.json"))
    assert doc["attributedTo"] == f"{base}/groups/koeln_fa"
    assert list(doc["nameMap"]) == ["fa"] and list(doc["contentMap"]) == ["fa"]
    assert "Kundgebung" not in json.dumps(doc, ensure_ascii=False)
    assert doc["startTime"] == "2027-06-08T12:00:00+02:00"

    await calls.change_status(live_node.node, call_id, "postponed", start="2027-06-15T12:00")
    doc = await _doc(copy_id)
    assert doc["startTime"] == "2027-06-15T12:00:00+02:00" and doc["status"] == "CONFIRMED"
    assert doc["eventStatus"] == "https://schema.org/EventRescheduled"
    deleted = await _api(live_node, "DELETE", f"/api/v1/objects/{call_id.rsplit('/', 1)[1]}",
                         token)
    assert deleted.status_code == 200, deleted.text
    async with httpx.AsyncClient() as client:
        gone = await client.get(copy_id, headers=AS)
    assert gone.status_code == 410
    async with live_node.node.db.read() as session:
        kinds = [a.activity_type for a in (await session.exec(
            select(Activity).where(Activity.object_uri == copy_id)
            .order_by(Activity.id))).all()]  # type: ignore[arg-type]
    assert kinds == ["Create", "Update", "Delete"]
