"""Bridgy Fed (issue 27, point 3): `hambastegi bridge bluesky GROUP` follows the bridge's
bot and accepts its follow back; a group Bridgy Fed would not bridge is told why. A
second node's group stands in for @bsky.brid.gy@bsky.brid.gy (real signed HTTP)."""

from __future__ import annotations

import asyncio

from sqlmodel import select

from node.crosspost.bridgy import companion_id, requirements
from node.federation.crosspost_log import PUBLIC
from node.storage.models import Activity, Fanout, Follower, Following, InboxItem
from tests.conftest import NodeFactory, wait_for
from tests.test_event_input import CALL_FLAGS
from tests.test_federation import received, rows


async def test_bridge_follows_the_bot_and_accepts_its_follow_back(nodes: NodeFactory) -> None:
    a = await nodes.create("a")
    bot = await nodes.create("bot")
    a.cli("group", "create", "koeln", "--display-name", "Köln", "--language", "de",
          "--manual")
    bot.cli("group", "create", "bsky", "--display-name", "Bridgy Fed", "--language", "en")
    handle = f"@bsky@{bot.host}"

    first = await asyncio.to_thread(a.cli, "bridge", "bluesky", "koeln", "--bot", handle)
    assert "followed" in first.stdout

    async def accepted() -> bool:
        follows = await rows(a, Following)
        return [f.state for f in follows] == ["accepted"]

    await wait_for(accepted, what="the bot accepts the group's follow")
    # The bot follows back; the group approves followers by hand, so it waits …
    await asyncio.to_thread(bot.cli, "follow", "bsky", f"@koeln@{a.host}")

    async def pending() -> bool:
        return [f.state for f in await rows(a, Follower)] == ["pending"]

    await wait_for(pending, what="the bot's follow request")
    # … until the command runs again: it accepts the bot's follow, nobody else's.
    again = await asyncio.to_thread(a.cli, "bridge", "bluesky", "koeln", "--bot", handle)
    assert "following" in again.stdout and "accepted the follow of" in again.stdout
    assert [f.state for f in await rows(a, Follower)] == ["accepted"]

    async def bot_follows() -> bool:
        return [f.state for f in await rows(bot, Following)] == ["accepted"]

    await wait_for(bot_follows, what="the bot's follow accepted on its side")

    # A call: the bot gets its companion Note (the Event links it), and only the bot.
    event_id = (await asyncio.to_thread(
        a.cli, "publish", "call", "koeln", "--title", "Kundgebung am Rathaus", "--text",
        "Kommt alle.", *CALL_FLAGS)).stdout.strip()
    note_id = companion_id(event_id)
    [note] = await wait_for(lambda: received(bot, "Create", note_id),
                            what="the companion Note at the bot")
    obj = note.body["object"]
    assert obj["type"] == "Note" and obj["to"] == [PUBLIC]
    assert "Kundgebung am Rathaus" in obj["content"] and f'href="{event_id}"' in obj["content"]
    # The Event went to the bot as to any follower, before the Note (one lane, in order).
    creates = sorted((i.id, i.body["object"]["type"]) for i in await rows(bot, InboxItem)
                     if i.activity_type == "Create")
    assert [kind for _, kind in creates] == ["Event", "Note"]
    async with a.db().read() as session:
        sent = (await session.exec(select(Activity).where(
            Activity.object_uri == note_id))).one()
        [fanout] = (await session.exec(select(Fanout).where(
            Fanout.activity_id == sent.id))).all()
    assert not sent.in_outbox and fanout.followers_of is None  # not the followers, not public lists
    assert len(fanout.inboxes or []) == 1 and bot.host in fanout.inboxes[0]

    # A delete on the node deletes the Note there too.
    await asyncio.to_thread(a.cli, "delete", event_id)
    await wait_for(lambda: received(bot, "Delete", note_id), what="the Note's Delete")


async def test_a_group_that_opts_out_is_told_why_and_follows_nobody(
        nodes: NodeFactory) -> None:
    a = await nodes.create("a", start=False)
    a.cli("group", "create", "koeln", "--display-name", "Köln", "--language", "de",
          "--summary", "Solidarität #nobridge")
    refused = a.cli("bridge", "bluesky", "koeln", check=False)
    assert refused.returncode == 1
    assert "#nobridge or #nobot" in refused.stderr
    assert await rows(a, Following) == []


def test_requirements_name_each_missing_piece() -> None:
    assert requirements({"name": "Köln", "icon": {"url": "https://n.example/a.png"},
                         "discoverable": True}) == []
    problems = requirements({"name": " ", "discoverable": False, "summary": "#NoBot"})
    assert len(problems) == 4
