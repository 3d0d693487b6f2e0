"""News across two real nodes: a language channel's followers get one language only."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import jsonschema

from node.storage.models import Activity, Following, InboxItem
from tests.conftest import NodeFactory, NodeProcess, wait_for
from tests.test_federation import received, rows

NEWS_SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "schemas"
                          / "news.schema.json").read_text())
PERSIAN = "کارگران پتروشیمی ماهشهر برای دومین هفته در اعتصاب هستند."
GERMAN = "Die Beschäftigten der Petrochemie in Mahshahr streiken seit zwei Wochen."
ENGLISH = "Petrochemical workers in Mahshahr are on strike for a second week."


async def follow(follower: NodeProcess, group: str, target: NodeProcess, handle: str) -> None:
    await asyncio.to_thread(follower.cli, "follow", group, f"{handle}@{target.host}")
    target_uri = target.actor_url(handle)

    async def accepted() -> bool:
        return any(f.state == "accepted" for f in await rows(
            follower, Following, Following.target_uri == target_uri))

    await wait_for(accepted, what=f"Accept of the follow of {handle}")


async def test_channel_follower_gets_only_persian_group_follower_gets_all_versions_as_updates(
        nodes: NodeFactory) -> None:
    a = await nodes.create("a")
    b = await nodes.create("b")
    a.cli("group", "create", "koeln", "--display-name", "Köln", "--language", "de")
    a.cli("channel", "enable", "koeln", "fa")
    b.cli("group", "create", "hamburg", "--language", "fa")
    b.cli("group", "create", "bremen", "--language", "de")
    await follow(b, "hamburg", a, "koeln_fa")
    await follow(b, "bremen", a, "koeln")

    # Written in Persian, then given German and English versions.
    item_id = (await asyncio.to_thread(
        a.cli, "publish", "news", "koeln", "--lang", "fa", "--title", "اعتصاب در ماهشهر",
        "--text", PERSIAN)).stdout.strip()
    for lang, title, text in (("de", "Streik in Mahshahr", GERMAN),
                              ("en", "Strike in Mahshahr", ENGLISH)):
        await asyncio.to_thread(a.cli, "news", "add-version", item_id, "--lang", lang,
                                "--title", title, "--text", text)

    # The group's follower: a Create, then each added version as an Update; the
    # last carries the primary version first with all three in contentMap.
    async def two_updates() -> list[InboxItem]:
        found = await received(b, "Update", item_id)
        return found if len(found) == 2 else []

    updates = await wait_for(two_updates, what="both Updates on B")
    assert await received(b, "Create", item_id)
    last = max((u.body["object"] for u in updates), key=lambda o: len(o["contentMap"]))
    for update in updates:
        jsonschema.validate(update.body["object"], NEWS_SCHEMA)
    assert list(last["contentMap"]) == ["fa", "de", "en"]
    assert last["content"] == last["contentMap"]["fa"] and PERSIAN in last["content"]
    assert GERMAN in last["contentMap"]["de"] and ENGLISH in last["contentMap"]["en"]
    assert all(u.actor_uri == a.actor_url("koeln") for u in updates)

    # The channel's follower: the channel's own Persian object, and nothing else.
    channel = a.actor_url("koeln_fa")

    async def channel_items() -> list[InboxItem]:
        return await rows(b, InboxItem, InboxItem.actor_uri == channel,
                          InboxItem.activity_type != "Accept")

    (create,) = await wait_for(channel_items, what="the channel's Create on B")
    assert create.activity_type == "Create"
    copy = create.body["object"]
    jsonschema.validate(copy, NEWS_SCHEMA)
    assert copy["attributedTo"] == channel and copy["id"] != item_id
    assert list(copy["contentMap"]) == ["fa"] and PERSIAN in copy["content"]
    # Both Updates of the item have arrived on B, and the channel sent nothing after
    # its Create (a version in another language is no news to it): its stored copy
    # never held German or English text.
    sent = await rows(a, Activity, Activity.object_uri == copy["id"])
    assert [s.activity_type for s in sent] == ["Create"]
    stored = json.dumps([i.body for i in await channel_items()], ensure_ascii=False)
    assert "Petrochemie" not in stored and "Mahshahr are" not in stored
    assert "Streik" not in stored
