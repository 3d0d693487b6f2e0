"""A network across four real nodes (issue 15): groups on two nodes join a network
on a third; a group on a fourth follows only the network and gets every member's
new posts as Announces, and their edits as Announce{Update} (FEDERATION.md,
"Networks"). A group that leaves or is removed is no longer relayed. A node that
was down catches up on a member's posts within one sync cycle, once each, and a
network it hosts relays them then (FEDERATION.md, "Peer sync").
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
    RemoteObject,
    SyncState,
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


async def join_accepted(hub: NodeProcess, network: str,
                        joining: list[tuple[NodeProcess, str]]) -> None:
    """Each (node, group) applies to ``network`` on ``hub``; the hub accepts them
    all; returns once every member knows and the network follows each."""
    network_uri = hub.actor_url(network)
    for node, group in joining:
        await asyncio.to_thread(node.cli, "network", "join", group, network_uri)

    async def applications() -> list[str]:
        listed = (await asyncio.to_thread(hub.cli, "network", "applications", network)
                  ).stdout.splitlines()
        return listed if len(listed) == len(joining) else []

    for line in await wait_for(applications, what=f"the applications to {network}"):
        await asyncio.to_thread(hub.cli, "network", "accept", network, line.split("\t")[0])
    for node, group in joining:
        member = node.actor_url(group)

        async def accepted(node: NodeProcess = node) -> bool:
            return await join_state(node, network_uri) == "accepted"

        async def followed(member: str = member) -> bool:
            return any(f.state == "accepted" for f in await rows(
                hub, Following, Following.target_uri == member))

        await wait_for(accepted, what=f"Accept of {member}'s Join")
        await wait_for(followed, what=f"{network} following {member}")


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


async def test_a_node_back_from_downtime_catches_up_and_its_network_relays_what_it_missed(
        nodes: NodeFactory) -> None:
    # Node 3 walks followed outboxes every 3 s (HAMBASTEGI_SYNC_SECONDS), and at start.
    period = 3.0
    hub, tehran_node, cairo_node, reader = [
        await nodes.create(name, extra_env={"HAMBASTEGI_SYNC_SECONDS": str(period)})
        if name == "cairo" else await nodes.create(name)
        for name in ("hub", "tehran", "cairo", "reader")]
    hub.cli("network", "create", "mena", "--display-name", "MENA", "--language", "en")
    tehran_node.cli("group", "create", "tehran", "--language", "fa")
    cairo_node.cli("group", "create", "cairo", "--language", "ar")
    # Node 3 hosts a network of its own, with node 2's group as a member.
    cairo_node.cli("network", "create", "nile", "--display-name", "Nile", "--language", "ar")
    reader.cli("group", "create", "readers", "--language", "en")
    mena, nile = hub.actor_url("mena"), cairo_node.actor_url("nile")
    tehran = tehran_node.actor_url("tehran")

    await join_accepted(hub, "mena", [(tehran_node, "tehran"), (cairo_node, "cairo")])
    await join_accepted(cairo_node, "nile", [(tehran_node, "tehran")])
    await follow(reader, "readers", hub, "mena")
    await follow(reader, "readers", cairo_node, "nile")

    async def walked() -> bool:
        # Node 3's first walk of the member's outbox is done: what comes next is a catch-up.
        async with cairo_node.db().read() as session:
            state = await session.get(SyncState, tehran)
        return state is not None and state.backfilled_at is not None

    await wait_for(walked, what="node 3's first walk of the member's outbox")

    # Node 3 is down while node 2 publishes three items; node 1's network relays
    # them at once, node 2's deliveries to node 3 fail and back off (≥ 30 s).
    await asyncio.to_thread(cairo_node.stop)
    missed = [await publish(tehran_node, "tehran", f"اعتصاب، روز {i}") for i in range(3)]
    for post in missed:
        async def by_mena(post: str = post) -> list[dict[str, Any]]:
            return await announced(reader, mena, post)

        await wait_for(by_mena, what=f"node 1's Announce of {post}")

    await asyncio.to_thread(cairo_node.start)

    async def caught_up() -> dict[str, RemoteObject] | None:
        stored = {o.uri: o for o in await rows(cairo_node, RemoteObject,
                                               RemoteObject.actor_uri == tehran)}
        return stored if set(missed) <= stored.keys() else None

    # One cycle and a margin for the start: node 2 redelivers only after 30 s, so
    # what is here now came from node 3's catch-up walk.
    stored = await wait_for(caught_up, timeout=period + 7, what="node 3 caught up")
    assert [stored[uri].source for uri in missed] == ["sync"] * 3

    # The network on node 3 relays them then: its follower gets each once.
    for post in missed:
        async def by_nile(post: str = post) -> list[dict[str, Any]]:
            return await announced(reader, nile, post)

        (announce,) = await wait_for(by_nile, what=f"node 3's Announce of {post}")
        assert announce["actor"] == nile and tehran in announce["cc"]

    # Once each: the posts are stored and relayed once; node 2's redelivery (when its
    # backoff ends) and later catch-ups find them so (relay.py: one Announce per object).
    async def recorded() -> bool:
        async with cairo_node.db().read() as session:
            state = await session.get(SyncState, tehran)
        return state is not None and state.last_synced_at is not None and \
            state.first_item_id is not None and state.failures == 0 and \
            state.next_sync_at > state.last_synced_at

    await wait_for(recorded, what="the catch-up recorded clean")
    relayed = await rows(cairo_node, Activity, Activity.activity_type == "Announce",
                         Activity.object_uri.in_(missed))  # type: ignore[attr-defined]
    assert sorted(a.object_uri for a in relayed) == sorted(missed)
    assert len(await rows(cairo_node, RemoteObject,
                          RemoteObject.uri.in_(missed))) == 3  # type: ignore[attr-defined]
    for post in missed:
        assert len(await announced(reader, nile, post)) == 1
        assert len(await announced(reader, mena, post)) == 1
