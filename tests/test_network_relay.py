"""A network across four real nodes (issue 15): groups on two nodes join a network
on a third; a group on a fourth follows only the network and gets every member's
new posts as Announces, and their edits as Announce{Update} (FEDERATION.md,
"Networks"). A group that leaves or is removed is no longer relayed.

The lead extends this file with the peer-sync part (backfill, catch-up).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from node.storage.models import (
    Activity,
    Follower,
    Following,
    InboxItem,
    NetworkJoin,
    NetworkMembership,
)
from tests.conftest import NodeFactory, NodeProcess, wait_for
from tests.test_federation import rows
from tests.test_news_federation import follow

AS_JSON = "application/activity+json"


async def announces_of(node: NodeProcess, network: str) -> list[dict[str, Any]]:
    """The Announces ``node`` received from the network actor, as bodies."""
    items = await rows(node, InboxItem, InboxItem.actor_uri == network,
                       InboxItem.activity_type == "Announce")
    return [i.body for i in items]


async def announced(node: NodeProcess, network: str, object_id: str) -> list[dict[str, Any]]:
    return [b for b in await announces_of(node, network) if b["object"] == object_id]


async def join_state(node: NodeProcess, network: str) -> str | None:
    found = await rows(node, NetworkJoin, NetworkJoin.network_uri == network)
    return found[0].state if found else None


async def publish(node: NodeProcess, group: str, text: str) -> str:
    done = await asyncio.to_thread(node.cli, "publish", "note", group, "--text", text)
    return done.stdout.strip()


async def test_a_follower_of_the_network_gets_every_members_posts_until_they_leave(
        nodes: NodeFactory) -> None:
    hub, tehran_node, cairo_node, reader = [
        await nodes.create(name) for name in ("hub", "tehran", "cairo", "reader")]
    hub.cli("network", "create", "mena", "--display-name", "Labour Solidarity MENA",
            "--language", "en", "--summary", "Labour organisations of the region")
    tehran_node.cli("group", "create", "tehran", "--display-name", "Tehran Bus Workers",
                    "--language", "fa")
    cairo_node.cli("group", "create", "cairo", "--display-name", "Cairo Textile Union",
                   "--language", "ar")
    reader.cli("group", "create", "readers", "--language", "en")
    mena = hub.actor_url("mena")
    tehran, cairo = tehran_node.actor_url("tehran"), cairo_node.actor_url("cairo")

    await asyncio.to_thread(tehran_node.cli, "network", "join", "tehran", f"mena@{hub.host}",
                            "--city", "Tehran", "--country", "IR", "--language", "fa")
    await asyncio.to_thread(cairo_node.cli, "network", "join", "cairo", mena,
                            "--country", "eg")

    async def two_applications() -> list[str]:
        listed = (await asyncio.to_thread(hub.cli, "network", "applications", "mena")
                  ).stdout.splitlines()
        return listed if len(listed) == 2 else []

    applications = await wait_for(two_applications, what="both applications on the hub")
    by_actor = {line.split("\t")[1]: line.split("\t") for line in applications}
    assert by_actor[tehran][3] == "Tehran, IR" and by_actor[tehran][5] == "fa"
    assert by_actor[cairo][3] == "EG"
    # Applications are private: neither the page nor the collection shows them yet.
    async with httpx.AsyncClient() as client:
        collection = (await client.get(mena + "/members?page=1",
                                       headers={"Accept": AS_JSON})).json()
        assert collection["orderedItems"] == []
        assert "Tehran Bus Workers" not in (await client.get(mena)).text
    for fields in applications:
        await asyncio.to_thread(hub.cli, "network", "accept", "mena", fields[0])

    for node, member in ((tehran_node, tehran), (cairo_node, cairo)):
        async def accepted(node: NodeProcess = node) -> bool:
            return await join_state(node, mena) == "accepted"

        async def followed(member: str = member) -> bool:
            # The network follows each member, so members deliver their posts to it.
            return any(f.state == "accepted" for f in await rows(
                hub, Following, Following.target_uri == member))

        await wait_for(accepted, what=f"Accept of {member}'s Join")
        await wait_for(followed, what=f"the network following {member}")

    await follow(reader, "readers", hub, "mena")

    # Both members' new posts reach the network's follower as Announces of their ids.
    tehran_post = await publish(tehran_node, "tehran", "اعتصاب رانندگان اتوبوس")
    cairo_post = await publish(cairo_node, "cairo", "إضراب عمال النسيج")
    for post in (tehran_post, cairo_post):
        async def relayed(post: str = post) -> list[dict[str, Any]]:
            return await announced(reader, mena, post)

        (announce,) = await wait_for(relayed, what=f"the Announce of {post}")
        assert announce["to"] == ["https://www.w3.org/ns/activitystreams#Public"]
        assert mena + "/followers" in announce["cc"]

    # An edit: Announce{Update} of the member's Update, the object by id.
    await asyncio.to_thread(tehran_node.cli, "edit", "note", tehran_post, "--text",
                            "اعتصاب رانندگان اتوبوس، روز دوم")

    async def relayed_update() -> list[dict[str, Any]]:
        return [b for b in await announces_of(reader, mena)
                if isinstance(b["object"], dict) and b["object"].get("type") == "Update"]

    (update,) = await wait_for(relayed_update, what="the relayed edit")
    assert update["object"]["actor"] == tehran and update["object"]["object"] == tehran_post

    # The public directory and members collection list both members.
    async with httpx.AsyncClient() as client:
        actor = (await client.get(mena, headers={"Accept": AS_JSON})).json()
        assert actor["type"] == "Group" and actor["members"] == mena + "/members"
        collection = (await client.get(mena + "/members?page=1",
                                       headers={"Accept": AS_JSON})).json()
        assert sorted(collection["orderedItems"]) == sorted([tehran, cairo])
        page = (await client.get(mena)).text
        assert "Tehran Bus Workers" in page and "Cairo Textile Union" in page
        assert tehran_node.host in page and "IR" in page

    # Cairo leaves, Tehran is removed: both stop being relayed (the network unfollows).
    await asyncio.to_thread(cairo_node.cli, "network", "leave", "cairo", mena)
    await asyncio.to_thread(hub.cli, "network", "remove", "mena", tehran)

    async def removed() -> bool:
        return await join_state(tehran_node, mena) == "removed"

    await wait_for(removed, what="Tehran told of its removal")
    for node, member in ((tehran_node, "tehran"), (cairo_node, "cairo")):
        async def unfollowed(node: NodeProcess = node) -> bool:
            return not await rows(node, Follower, Follower.actor_uri == mena)

        await wait_for(unfollowed, what=f"the network's follow of {member} undone")
    states = {m.member_uri: m.state for m in await rows(hub, NetworkMembership)}
    assert states == {tehran: "removed", cairo: "left"}
    assert (await asyncio.to_thread(hub.cli, "network", "members", "mena")).stdout == ""

    # The members' nodes no longer count the network among their followers (waited
    # for above), so these posts go to no inbox of the hub; the relay's own check of
    # membership, for a former member that still posts to it, is in test_network_input.
    late = [await publish(tehran_node, "tehran", "after removal"),
            await publish(cairo_node, "cairo", "after leaving")]
    assert not await rows(hub, Activity, Activity.activity_type == "Announce",
                          Activity.object_uri.in_(late))  # type: ignore[attr-defined]
    for post in late:
        assert await announced(reader, mena, post) == []
