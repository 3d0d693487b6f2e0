"""FEP-8fcf followers collection synchronisation, both directions: the header
on deliveries (signed, digest right), the partial collection (signed GETs, the
signer's host only), healing stale follows between real nodes, and headers
that must be ignored."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import col, delete, select

from node.federation import followers_sync, signatures
from node.federation.followers_sync import parse_header, partial_digest
from node.groups import operations
from node.storage.models import Follower, Following, InboxItem, LocalActor
from tests.conftest import LiveNode, NodeFactory, NodeProcess, wait_for
from tests.fediverse import FakeActor, FakeRemote, LoopbackServer, signed_post
from tests.fediverse.servers import AS_JSON
from tests.test_inbox import follow, setup_group

AS = {"Accept": "application/activity+json"}


def test_the_digest_is_the_feps_own_example() -> None:
    # FEP-8fcf "Partial follower collection digest": its worked example.
    assert partial_digest(["https://testing.example.org/users/1",
                           "https://testing.example.org/users/2"]) == \
        "c33f48cd341ef046a206b8a72ec97af65079f9a3a9b90eef79c5920dce45c61f"
    assert partial_digest([]) == "0" * 64


def test_malformed_and_oversized_headers_are_refused() -> None:
    good = 'collectionId="https://a.example/f", url="https://a.example/s", digest="ab"'
    assert parse_header(good) == {"collectionId": "https://a.example/f",
                                  "url": "https://a.example/s", "digest": "ab"}
    for bad in ('collectionId="x", url="y"',  # no digest
                'collectionId=x, url="y", digest="z"',  # unquoted
                good + ', junk',
                'collectionId="a\\"b", url="y", digest="z"',
                good + ', pad="' + "x" * 5000 + '"'):
        assert parse_header(bad) is None, bad


@given(st.text(max_size=300))
def test_header_parsing_never_raises_on_any_text(value: str) -> None:
    parsed = parse_header(value)
    assert parsed is None or {"collectionId", "url", "digest"} <= parsed.keys()


@pytest.mark.parametrize("value", ["0", "-5", "soon", "nan"])
def test_a_sync_period_that_is_not_positive_is_refused(value: str) -> None:
    from node.core.settings import Settings, SettingsError

    with pytest.raises(SettingsError):
        Settings.load(environ={"HAMBASTEGI_SYNC_SECONDS": value})
    assert Settings.load(environ={"HAMBASTEGI_SYNC_SECONDS": "2.5"}).sync_seconds == 2.5
    assert Settings.load(environ={}).sync_seconds == 300


def signed_get(actor: FakeActor, url: str) -> dict[str, str]:
    return signatures.sign_cavage(method="GET", url=url, body=None, key_id=actor.key_id,
                                  private_key=actor.rsa, extra_headers=AS)


async def test_deliveries_carry_a_signed_header_with_the_hosts_digest(
        live_node: LiveNode, remote: FakeRemote) -> None:
    group = await setup_group(live_node)
    alice, bob = remote.add_actor("alice"), remote.add_actor("bob")
    for actor in (alice, bob):
        await follow(live_node, remote, actor, group)
    await wait_for(lambda: asyncio.sleep(0, remote.received_of_type("Accept")[1:]),
                   what="both Accepts")
    await operations.publish_note(live_node.node, "koeln", text="Aufruf")
    creates = await wait_for(lambda: asyncio.sleep(0, remote.received_of_type("Create")),
                             what="the Create")
    headers = {k.lower(): v for k, v in creates[0].headers.items()}
    params = parse_header(headers["collection-synchronization"])
    assert params is not None
    assert params["collectionId"] == group + "/followers"
    assert params["url"] == group + "/followers_synchronization"
    assert params["digest"] == partial_digest([alice.id, bob.id])
    assert "collection-synchronization" in headers["signature"].split('headers="')[1]

    # The partial collection: a signed GET of that host gets that host's followers.
    carol = FakeRemote()
    await carol.start()
    try:
        await follow(live_node, carol, carol.add_actor("carol"), group)
        await wait_for(lambda: asyncio.sleep(0, carol.received_of_type("Accept")),
                       what="carol's Accept")
        url = params["url"]
        async with httpx.AsyncClient() as client:
            mine = await client.get(url, headers=signed_get(alice, url))
            theirs = await client.get(url, headers=signed_get(carol.actors["carol"], url))
            unsigned = await client.get(url, headers=AS)
            forged = await client.get(url, headers={
                **signed_get(alice, url), "Date": "Mon, 01 Jan 2024 00:00:00 GMT"})
            missing = await client.get(
                live_node.url("/groups/nobody/followers_synchronization"),
                headers=signed_get(alice, url))
    finally:
        await carol.stop()
    assert sorted(mine.json()["orderedItems"]) == sorted([alice.id, bob.id])
    assert theirs.json()["orderedItems"] == [carol.actors["carol"].id]
    assert unsigned.status_code == 401 and forged.status_code == 401
    assert missing.status_code == 404


async def _groups_following(b: NodeProcess, a: NodeProcess, names: list[str]) -> None:
    for name in names:
        b.cli("group", "create", name, "--language", "en")
        await asyncio.to_thread(b.cli, "follow", name, f"paris@{a.host}")

    async def accepted() -> bool:
        async with b.db().read() as session:
            rows = (await session.exec(select(Following.state))).all()
        return list(rows) == ["accepted"] * len(names)

    await wait_for(accepted, what="every follow accepted")


async def _follower_names(a: NodeProcess) -> list[str]:
    async with a.db().read() as session:
        rows = (await session.exec(select(Follower.actor_uri))).all()
    return sorted(uri.rsplit("/", 1)[1] for uri in rows)


async def _following_names(b: NodeProcess) -> list[str]:
    async with b.db().read() as session:
        rows = (await session.exec(
            select(LocalActor.username).join(
                Following, col(Following.local_actor_id) == col(LocalActor.id)))).all()
    return sorted(rows)


async def test_stale_follows_are_healed_both_ways_between_real_nodes(
        nodes: NodeFactory) -> None:
    a = await nodes.create("a")
    b = await nodes.create("b")
    a.cli("group", "create", "paris", "--language", "fr")
    await _groups_following(b, a, ["one", "two", "three"])
    assert await _follower_names(a) == ["one", "three", "two"]

    # A lost "two" as a follower; B lost its record of "three" following.
    async with a.db().write() as session:
        await session.exec(delete(Follower).where(col(Follower.actor_uri).endswith("/two")))
    async with b.db().write() as session:
        three = (await session.exec(
            select(LocalActor).where(col(LocalActor.username) == "three"))).one()
        await session.exec(delete(Following).where(
            col(Following.local_actor_id) == three.id))

    # A's next delivery to B carries the digest of {one, three}; B has {one, two}.
    await asyncio.to_thread(a.cli, "publish", "note", "paris", "--text", "bonjour")

    async def healed() -> bool:
        return await _following_names(b) == ["one"] and await _follower_names(a) == ["one"]

    await wait_for(healed, what="both sides agree again")


async def test_headers_naming_another_hosts_collection_or_unsigned_are_ignored(
        live_node: LiveNode, remote: FakeRemote) -> None:
    alice = remote.add_actor("alice")
    doc = alice.document()
    doc["followers"] = alice.id + "/followers"
    alice.doc_override = doc
    listing = {"id": alice.id + "/followers_synchronization", "type": "OrderedCollection",
               "orderedItems": []}
    remote.document("/users/alice/followers_synchronization", listing)
    await operations.create_group(live_node.node, "koeln", display_name="Köln", language="de")
    async with live_node.node.db.write() as session:
        group = (await session.exec(
            select(LocalActor).where(col(LocalActor.username) == "koeln"))).one()
        session.add(Following(local_actor_id=group.id or 0, target_uri=alice.id,
                              follow_activity_id=live_node.url("/follows/1"),
                              state="accepted"))
    inbox = live_node.url("/inbox")
    wrong = "f" * 64

    async def deliver(header: str, *, signed: bool = True) -> None:
        body = json.dumps(remote.activity(alice, "Create", note(alice))).encode()
        if signed:
            response = await signed_post(inbox, body, alice,
                                         extra_headers={"Collection-Synchronization": header})
        else:
            headers = {"Content-Type": AS_JSON,
                       **signatures.sign_cavage(method="POST", url=inbox, body=body,
                                                key_id=alice.key_id, private_key=alice.rsa),
                       "Collection-Synchronization": header}
            async with httpx.AsyncClient() as client:
                response = await client.post(inbox, content=body, headers=headers)
        assert response.status_code == 202

    async with LoopbackServer() as elsewhere:
        elsewhere.document("/followers_synchronization", listing)
        await deliver(followers_sync.header_value(
            elsewhere.url("/followers"), elsewhere.url("/followers_synchronization"), wrong))
        await deliver(followers_sync.header_value(
            alice.id + "/followers", elsewhere.url("/followers_synchronization"), wrong))
        await deliver(followers_sync.header_value(
            alice.id + "/followers", alice.id + "/followers_synchronization", wrong),
            signed=False)

        async def stored() -> bool:
            async with live_node.node.db.read() as session:
                return len((await session.exec(select(InboxItem))).all()) == 3

        await wait_for(stored, what="the three deliveries")
        await asyncio.gather(*live_node.node.follower_checks.running.values())
        assert elsewhere.requests == []
    assert "/users/alice/followers_synchronization" not in remote.paths()

    # The same header on the sender's own origin, signed: checked, fetched, healed.
    await deliver(followers_sync.header_value(
        alice.id + "/followers", alice.id + "/followers_synchronization", wrong))

    async def dropped() -> bool:
        async with live_node.node.db.read() as session:
            return (await session.exec(select(Following))).first() is None

    await wait_for(dropped, what="the follow they do not list dropped")
    assert "/users/alice/followers_synchronization" in remote.paths()


def note(actor: FakeActor) -> dict[str, Any]:
    import secrets

    return {"id": f"{actor.id}/notes/{secrets.token_hex(4)}", "type": "Note",
            "attributedTo": actor.id, "content": "hi"}
