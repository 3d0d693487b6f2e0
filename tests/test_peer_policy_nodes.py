"""Peer policy between real nodes (issue 15, point 5): blocks, allowlist mode and
authorized fetch, over real signed HTTP.

Each node and fake remote listens on its own loopback address (127.0.0.2,
127.0.0.3, …: all reach lo on Linux), so each has a host name of its own and
a block of one does not touch the others; production code is unchanged.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func
from sqlmodel import select

from node.federation import peers, policy, publishing, remote_actors
from node.federation import signatures as sig
from node.federation.fetch import FetchError
from node.groups import operations
from node.groups.errors import OperationError
from node.storage.models import DeliveryFailure, Follower, Following, InboxItem, LocalActor
from tests.conftest import (
    DatabaseFactory,
    LiveNode,
    run_cli,
    start_live_node,
    stop_live_node,
    wait_for,
)
from tests.fediverse import FakeRemote
from tests.fediverse.remote import FakeActor, activity, signed_post

AS = "application/activity+json"


@pytest.fixture
async def remotes() -> AsyncIterator[Callable[[str], Any]]:
    started: list[FakeRemote] = []

    async def make(address: str) -> FakeRemote:
        remote = FakeRemote(address)
        await remote.start()
        started.append(remote)
        return remote

    yield make
    for remote in started:
        await remote.stop()


@pytest.fixture
async def live_nodes(tmp_path: Path, databases: DatabaseFactory
                     ) -> AsyncIterator[Callable[..., Any]]:
    started: list[LiveNode] = []

    async def make(address: str, **env: str) -> LiveNode:
        live = await start_live_node(tmp_path, await databases.new(), env, address=address)
        started.append(live)
        return live

    yield make
    for live in started:
        await stop_live_node(live)


async def count(live: LiveNode, model: Any, *where: Any) -> int:
    async with live.node.db.read() as session:
        query = select(func.count()).select_from(model)
        for cond in where:
            query = query.where(cond)
        return int((await session.exec(query)).one())


def signed_get_headers(actor: FakeActor, url: str, key: Any = None) -> dict[str, str]:
    return {"Accept": AS, **sig.sign_cavage(method="GET", url=url, body=None,
                                            key_id=actor.key_id,
                                            private_key=key or actor.rsa)}


async def follow_group(live: LiveNode, actor: FakeActor, group: str) -> httpx.Response:
    return await signed_post(live.url(f"/groups/{group}/inbox"),
                             activity(actor, "Follow", live.node.urls.actor(group)), actor)


async def accepted_followers(live: LiveNode, n: int) -> bool:
    return await count(live, Follower, Follower.state == "accepted") == n


def note(actor: FakeActor, text: str) -> dict[str, Any]:
    obj = {"id": f"{actor.id}/notes/{abs(hash(text))}", "type": "Note", "content": text,
           "attributedTo": actor.id, "to": ["https://www.w3.org/ns/activitystreams#Public"]}
    return activity(actor, "Create", obj)


async def test_block_refuses_inbox_delivery_and_fetch_and_removes_followers(
        live_nodes: Any, remotes: Any) -> None:
    live = await live_nodes("127.0.0.2")
    node = live.node
    blocked, other = await remotes("127.0.0.3"), await remotes("127.0.0.4")
    alice, bob = blocked.add_actor("alice"), other.add_actor("bob")
    await operations.create_group(node, "union", display_name="Union", language="en")
    for actor in (alice, bob):
        assert (await follow_group(live, actor, "union")).status_code == 202
    await wait_for(lambda: accepted_followers(live, 2), what="both follows accepted")
    await operations.follow(node, "union", alice.id)
    assert await count(live, Following) == 1

    change = await policy.block_domain(node, "127.0.0.3", "test")
    assert (change.domain, change.followers_removed, change.follows_cancelled) == (
        "127.0.0.3", 1, 1)
    async with node.db.read() as session:
        left = (await session.exec(select(Follower.actor_uri))).all()
    assert left == [bob.id]
    assert await count(live, Following) == 0
    assert policy.is_blocked(node, alice.id) and policy.is_blocked(node, blocked.authority)
    assert not policy.is_blocked(node, bob.id)

    # Inbox: 403 before any key lookup; nothing stored.
    items = await count(live, InboxItem)
    answer = await signed_post(live.url("/groups/union/inbox"), note(alice, "hi"), alice)
    assert answer.status_code == 403 and answer.json()["reason"] == "blocked_domain"
    answer = await signed_post(live.url("/inbox"), note(alice, "shared"), alice)
    assert answer.status_code == 403
    for kind in ("Follow", "Join", "Announce"):  # whatever it is: a network Join too
        answer = await signed_post(live.url("/groups/union/inbox"),
                                   activity(alice, kind, node.urls.actor("union")), alice)
        assert answer.status_code == 403, kind
    assert await count(live, InboxItem) == items

    # Fetch: WebFinger, actor documents: refused before connecting.
    reached = len(blocked.requests)
    with pytest.raises(OperationError) as refused:
        await operations.follow(node, "union", f"alice@{blocked.authority}")
    assert "blocked" in str(refused.value) and refused.value.status == 403
    with pytest.raises(FetchError) as fetch_refused:
        await node.client.fetch_activity(alice.id)
    assert fetch_refused.value.reason == "blocked_domain"

    # Delivery: an explicit inbox on the blocked host (as an Accept or an
    # invitation would have) is recorded failed, never sent; bob still gets posts.
    async with node.db.write() as session:
        union = (await session.exec(select(LocalActor).where(
            LocalActor.username == "union"))).one()
        announce = await publishing.send_to(
            session, union, node.urls, activity_type="Announce",
            obj=node.urls.actor("union"), recipient=alice.id, inbox=alice.inbox)
    node.changed()
    await operations.publish_note(node, "union", text="after the block")

    # Only this Announce's failure counts: the Accept of alice's Follow and our Follow of
    # alice may still have been queued at the block (a loaded machine) and fail alike.
    async def failed_blocked() -> bool:
        return await count(live, DeliveryFailure,
                           DeliveryFailure.error == "blocked_domain",
                           DeliveryFailure.activity_id == announce.id) == 1

    await wait_for(failed_blocked, what="the blocked delivery recorded")
    await wait_for(lambda: _received(other, "Create"), what="bob gets the note")
    assert len(blocked.requests) == reached  # nothing at all went to the blocked host


async def _received(remote: FakeRemote, activity_type: str) -> bool:
    return bool(remote.received_of_type(activity_type))


async def test_a_block_made_by_the_cli_reaches_the_running_server(
        tmp_path: Path, live_nodes: Any, remotes: Any) -> None:
    live = await live_nodes("127.0.0.2")
    blocked = await remotes("127.0.0.3")
    alice = blocked.add_actor("alice")
    await operations.create_group(live.node, "union", display_name="Union", language="en")
    assert (await follow_group(live, alice, "union")).status_code == 202
    settings = live.node.settings
    env = {**os.environ, "HAMBASTEGI_DATABASE_URL": settings.database_url,
           "HAMBASTEGI_BASE_URL": settings.base_url,
           "HAMBASTEGI_DATA_DIR": str(tmp_path / "cli")}
    result = await asyncio.to_thread(run_cli, env, "block", "127.0.0.3", "--note", "spam")
    assert result.returncode == 0, result.stderr
    answer = await signed_post(live.url("/groups/union/inbox"), note(alice, "late"), alice)
    assert answer.status_code == 403, answer.text
    listed = await asyncio.to_thread(run_cli, env, "peers", "--json")
    assert listed.returncode == 0, listed.stderr
    peers = {p["host"]: p for p in json.loads(listed.stdout)["peers"]}
    assert peers[blocked.authority]["blocked"] is True
    assert peers[blocked.authority]["refused"] == "blocked_domain"
    # Its NodeInfo was not fetched either: the client refused the host.
    assert peers[blocked.authority]["nodeinfo_error"] == "blocked_domain"
    assert not [r for r in blocked.requests if "nodeinfo" in r.path]
    lifted = await asyncio.to_thread(run_cli, env, "unblock", "127.0.0.3")
    assert lifted.returncode == 0, lifted.stderr
    answer = await signed_post(live.url("/groups/union/inbox"), note(alice, "again"), alice)
    assert answer.status_code == 202, answer.text


async def test_allowlist_mode_refuses_an_unlisted_peers_follow_delivery_and_get(
        live_nodes: Any, remotes: Any) -> None:
    live = await live_nodes("127.0.0.2", HAMBASTEGI_FEDERATION="allowlist",
                            HAMBASTEGI_AUTHORIZED_FETCH="1")
    node = live.node
    stranger, friend = await remotes("127.0.0.3"), await remotes("127.0.0.4")
    alice, bob = stranger.add_actor("alice"), friend.add_actor("bob")
    await operations.create_group(node, "union", display_name="Union", language="en")
    await policy.allow_domain(node, "127.0.0.4")

    refused = await follow_group(live, alice, "union")
    assert refused.status_code == 403 and refused.json()["reason"] == "not_allowed"
    assert (await follow_group(live, bob, "union")).status_code == 202
    await wait_for(lambda: accepted_followers(live, 1), what="the listed peer's follow")
    async with node.db.read() as session:
        assert (await session.exec(select(Follower.actor_uri))).all() == [bob.id]

    outbox = live.url("/groups/union/outbox")
    async with httpx.AsyncClient() as http:
        unlisted = await http.get(outbox, headers=signed_get_headers(alice, outbox))
        listed = await http.get(outbox, headers=signed_get_headers(bob, outbox))
    assert unlisted.status_code == 403 and unlisted.json()["reason"] == "not_allowed"
    assert listed.status_code == 200 and listed.json()["type"] == "OrderedCollection"

    reached = len(stranger.requests)
    with pytest.raises(OperationError) as follow_refused:
        await operations.follow(node, "union", alice.id)
    assert "allowlist" in str(follow_refused.value)
    assert len(stranger.requests) == reached

    # Taken off the list: its follower stays stored, but gets nothing.
    await policy.disallow_domain(node, "127.0.0.4")
    await operations.publish_note(node, "union", text="members only")

    async def failed_not_allowed() -> bool:
        return await count(live, DeliveryFailure, DeliveryFailure.error == "not_allowed") == 1

    await wait_for(failed_not_allowed, what="the unlisted delivery recorded")
    assert not friend.received_of_type("Create")


async def test_authorized_fetch_refuses_unsigned_and_blocked_gets_and_serves_signed_ones(
        live_nodes: Any, remotes: Any) -> None:
    live = await live_nodes("127.0.0.2", HAMBASTEGI_AUTHORIZED_FETCH="1")
    node = live.node
    blocked, other = await remotes("127.0.0.3"), await remotes("127.0.0.4")
    alice, bob = blocked.add_actor("alice"), other.add_actor("bob")
    await operations.create_group(node, "union", display_name="Union", language="en")
    object_url = await operations.publish_note(node, "union", text="hello peers")
    await policy.block_domain(node, "127.0.0.3")
    guarded = [live.url(p) for p in ("/groups/union/outbox", "/groups/union/followers",
                                     "/groups/union/following", "/groups/union/featured",
                                     "/groups/union/outbox?page=1")] + [object_url]
    async with httpx.AsyncClient() as http:
        for url in guarded:
            unsigned = await http.get(url, headers={"Accept": AS})
            assert unsigned.status_code == 401, url
            assert unsigned.headers["WWW-Authenticate"].startswith("Signature")
            forged = await http.get(url, headers=signed_get_headers(
                bob, url, key=alice.rsa))  # bob's key id, someone else's key
            assert forged.status_code == 401, url
            by_blocked = await http.get(url, headers=signed_get_headers(alice, url))
            assert by_blocked.status_code == 403, url
            signed = await http.get(url, headers=signed_get_headers(bob, url))
            assert signed.status_code == 200, (url, signed.text)
            assert signed.headers["Cache-Control"].startswith("private")
        # A signature made for one URL does not open another.
        replayed = await http.get(guarded[1], headers=signed_get_headers(bob, guarded[0]))
        assert replayed.status_code == 401
        # What stays public: the actor (with its key), WebFinger, NodeInfo, HTML pages.
        actor = await http.get(live.url("/groups/union"), headers={"Accept": AS})
        assert actor.status_code == 200 and "publicKeyPem" in actor.json()["publicKey"]
        assert (await http.get(live.url("/actor"), headers={"Accept": AS})).status_code == 200
        finger = await http.get(live.url(
            f"/.well-known/webfinger?resource=acct:union@{live.host}"))
        assert finger.status_code == 200
        assert (await http.get(object_url, headers={"Accept": "text/html"})).status_code == 200
        assert (await http.get(live.url("/groups/union/feed.atom"))).status_code == 200
    # The blocked signer's key was never fetched: refused on its key id alone.
    assert not blocked.fetches


async def test_two_nodes_in_authorized_fetch_mode_follow_each_other_deliver_and_fetch(
        live_nodes: Any) -> None:
    a = await live_nodes("127.0.0.2", HAMBASTEGI_AUTHORIZED_FETCH="1")
    b = await live_nodes("127.0.0.3", HAMBASTEGI_AUTHORIZED_FETCH="1")
    await operations.create_group(a.node, "union", display_name="Union", language="en")
    await operations.create_group(b.node, "guild", display_name="Guild", language="en")
    await operations.follow(a.node, "union", f"guild@{b.host}")
    await operations.follow(b.node, "guild", f"union@{a.host}")

    async def both_accepted() -> bool:
        return (await count(a, Following, Following.state == "accepted") == 1
                and await count(b, Following, Following.state == "accepted") == 1)

    await wait_for(both_accepted, what="both follows accepted")
    object_url = await operations.publish_note(a.node, "union", text="to the guild")

    async def delivered() -> bool:
        async with b.node.db.read() as session:
            items = (await session.exec(select(InboxItem).where(
                InboxItem.activity_type == "Create"))).all()
        return any(isinstance(i.body.get("object"), dict)
                   and i.body["object"].get("id") == object_url for i in items)

    await wait_for(delivered, what="the note delivered to the other node")
    # b's own GETs are signed by its instance actor: a serves them.
    outbox = a.url("/groups/union/outbox")
    doc = await remote_actors.fetch_document(b.node, outbox)
    assert doc["type"] == "OrderedCollection" and doc["totalItems"] >= 1
    fetched = await remote_actors.fetch_document(b.node, object_url)
    assert fetched["id"] == object_url
    async with httpx.AsyncClient() as http:
        assert (await http.get(outbox, headers={"Accept": AS})).status_code == 401
    # `hambastegi peers`: the other node, its software from NodeInfo, its health.
    (peer,) = await peers.list_peers(a.node)
    assert (peer.host, peer.software, peer.refused) == (b.host, "hambastegi", None)
    assert peer.version and peer.nodeinfo_error is None
    assert peer.last_success_at is not None and peer.failing_since is None
