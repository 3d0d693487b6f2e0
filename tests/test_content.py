"""What a group publishes about itself and its posts, on every public surface."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from sqlmodel import select

from node.calls import operations as calls
from node.groups import operations
from node.storage.models import Activity
from tests.conftest import LiveNode

AS = {"Accept": "application/activity+json"}
HOSTILE = '<p>Solidarity</p><script>alert(1)</script><img src=x onerror="alert(2)">'


async def get(url: str, *, as_json: bool = False) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(url, headers=AS if as_json else {})


async def test_group_summary_is_sanitised_from_cli_and_api(live_node: LiveNode) -> None:
    await operations.create_group(live_node.node, "koeln", display_name="<b>Köln</b> & co",
                                  language="de", summary=HOSTILE)
    token = await operations.create_token(live_node.node, "admin")
    async with httpx.AsyncClient() as client:
        created = await client.post(
            live_node.url("/api/v1/groups"), headers={"Authorization": f"Bearer {token}"},
            json={"username": "paris", "display_name": "Paris", "summary": HOSTILE})
    assert created.status_code == 201
    for name in ("koeln", "paris"):
        doc = (await get(live_node.url(f"/groups/{name}"), as_json=True)).json()
        page = (await get(live_node.url(f"/groups/{name}"))).text
        for text in (doc["summary"], *doc["summaryMap"].values(), page):
            # (the page's own avatar is an <img>; the hostile one, src=x, must be gone)
            assert "<script" not in text and "onerror" not in text and "src=x" not in text
            assert 'src="x"' not in text
        assert "Solidarity" in doc["summary"]
    koeln = (await get(live_node.url("/groups/koeln"), as_json=True)).json()
    assert koeln["name"] == "<b>Köln</b> & co"  # a name is plain text, kept as typed
    page = (await get(live_node.url("/groups/koeln"))).text
    assert "<b>" not in page and "&lt;b&gt;Köln&lt;/b&gt; &amp; co" in page  # shown, never run


async def _activity_urls(live: LiveNode) -> list[str]:
    async with live.node.db.read() as session:
        rows = (await session.exec(select(Activity).where(Activity.in_outbox))).all()
    return [live.node.urls.activity(row.uuid) for row in rows]


async def _public_surfaces(live: LiveNode, group: str, object_id: str) -> dict[str, str]:
    """Every public place a post's text can be read, fetched now."""
    texts: dict[str, str] = {}
    for url in await _activity_urls(live):
        texts[url] = (await get(url, as_json=True)).text
    texts["outbox"] = (await get(live.url(f"/groups/{group}/outbox?page=1"), as_json=True)).text
    texts["object"] = (await get(object_id, as_json=True)).text
    texts["object.html"] = (await get(object_id)).text
    texts["actor.html"] = (await get(live.url(f"/groups/{group}"))).text
    texts["group.ics"] = (await get(live.url(f"/groups/{group}/calendar.ics"))).text
    texts["event.ics"] = (await get(object_id + "/calendar.ics")).text
    return texts


def _leaks(texts: dict[str, str], *needles: str) -> list[str]:
    return [f"{where}: {needle}" for where, text in texts.items() for needle in needles
            if needle in text]


async def test_edited_and_deleted_note_leaves_no_old_text_anywhere(live_node: LiveNode) -> None:
    node = live_node.node
    await operations.create_group(node, "koeln", display_name="Köln", language="de")
    note_id = await operations.publish_note(node, "koeln", text="Treffpunkt Altmarkt")
    await _public_surfaces(live_node, "koeln", note_id)  # fill every cache first
    await operations.edit_note(node, note_id, text="Treffpunkt Neumarkt")
    after_edit = await _public_surfaces(live_node, "koeln", note_id)
    assert _leaks(after_edit, "Altmarkt") == []
    assert "Neumarkt" in after_edit["outbox"]
    await operations.delete_post(node, note_id)
    after_delete = await _public_surfaces(live_node, "koeln", note_id)
    assert _leaks(after_delete, "Altmarkt", "Neumarkt") == []
    outbox = orjson.loads(after_delete["outbox"])
    assert {item["object"]["type"] for item in outbox["orderedItems"]} == {"Tombstone"}


def _call(place: str, lat: float, **extra: Any) -> dict[str, Any]:
    return {"language": "de", "title": {"de": "Kundgebung"}, "text": {"de": "Kommt alle."},
            "start": "2027-06-08T12:00", "timezone": "Europe/Berlin",
            "place": {"name": place, "city": "Köln", "latitude": lat, "longitude": 6.9577},
            **extra}


async def test_edited_and_deleted_event_leaves_no_old_place_anywhere(
        live_node: LiveNode) -> None:
    node = live_node.node
    await operations.create_group(node, "koeln", display_name="Köln", language="de")
    event_id = await calls.create_call(node, "koeln", _call("Hinterhof Geheimweg", 50.9375))
    await _public_surfaces(live_node, "koeln", event_id)
    await calls.update_call(node, event_id, _call("Domplatte", 50.9413))
    after_edit = await _public_surfaces(live_node, "koeln", event_id)
    assert _leaks(after_edit, "Geheimweg", "50.9375") == []
    assert "Domplatte" in after_edit["outbox"] and "Domplatte" in after_edit["event.ics"]
    # The public status Note of a postponement names the place too.
    await calls.change_status(node, event_id, "postponed", start="2027-06-15T12:00")
    assert "Domplatte" in (await get(live_node.url("/groups/koeln"))).text
    await operations.delete_post(node, event_id)
    after_delete = await _public_surfaces(live_node, "koeln", event_id)
    assert _leaks(after_delete, "Geheimweg", "50.9375", "Domplatte", "50.9413") == []


async def test_hashtags_and_mentions_are_tagged_linked_and_delivered(
        live_node: LiveNode, remote: Any) -> None:
    from tests.conftest import wait_for

    node = live_node.node
    ali = remote.add_actor("ali")
    await operations.create_group(node, "koeln", display_name="Köln", language="de")
    await operations.create_group(node, "paris", display_name="Paris", language="fr")
    await calls.create_call(node, "paris", _call("Place", 48.85, hashtags=["Solidarity"]))
    note_id = await operations.publish_note(
        node, "koeln", text=f"Streik! #Solidarity #Koeln2027 @ali@{remote.host}:{remote.port} "
                            "and @nobody@127.0.0.1:9 too")
    doc = (await get(note_id, as_json=True)).json()
    tags = {(t["type"], t["name"]): t["href"] for t in doc["tag"]}
    assert tags == {("Hashtag", "#Solidarity"): live_node.url("/tags/solidarity"),
                    ("Hashtag", "#Koeln2027"): live_node.url("/tags/koeln2027"),
                    ("Mention", f"@ali@{remote.host}:{remote.port}"): ali.id}
    assert ali.id in doc["cc"]
    assert f'href="{live_node.url("/tags/solidarity")}"' in doc["content"]
    assert f'href="{ali.id}"' in doc["content"] and "@nobody@127.0.0.1:9" in doc["content"]

    async def delivered() -> bool:
        return any(r.body["object"].get("id") == note_id
                   for r in remote.received_of_type("Create"))

    await wait_for(delivered, what="the Create at the mentioned actor's inbox")
    page = await get(live_node.url("/tags/solidarity"))
    assert page.status_code == 200
    assert "Streik!" in page.text and "Kundgebung" in page.text
    assert node.urls.object(note_id.rsplit("/", 1)[1]) in page.text
    empty = await get(live_node.url("/tags/nothinghere"))
    assert empty.status_code == 200 and "Streik" not in empty.text
