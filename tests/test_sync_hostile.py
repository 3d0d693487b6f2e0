"""Peer sync against hostile or broken peers (issue 15, "Bad input"): outboxes
that are endless, circular, huge, slow, point to another origin or carry other
actors' items are bounded or refused, and nothing is stored that the origin
does not vouch for. The peers are fake (the far internet); the node is real."""

from __future__ import annotations

import asyncio
import json
import random
import time
from datetime import timedelta
from typing import Any

from aiohttp import web
from sqlmodel import col, select

from node.federation import outbox_sync, retry
from node.federation.outbox_walk import Bounds, WalkFailed
from node.groups import operations
from node.storage.db import utcnow
from node.storage.models import Following, InboxItem, LocalActor, RemoteObject, SyncState
from tests.conftest import LiveNode, wait_for
from tests.fediverse import FakeActor, FakeRemote, LoopbackServer, signed_post
from tests.fediverse.servers import AS_JSON

SMALL = Bounds(max_items=50, max_age=timedelta(days=90), max_pages=5, deadline=5.0,
               max_fetches=5)


def note(actor: FakeActor, n: int, *, author: str | None = None, base: str | None = None,
         days_ago: float = 0) -> dict[str, Any]:
    published = (utcnow() - timedelta(days=days_ago)).isoformat().replace("+00:00", "Z")
    return {"id": f"{base or actor.base}/notes/{actor.username}-{n}", "type": "Note",
            "attributedTo": author or actor.id, "content": f"<p>post {n}</p>",
            "published": published, "to": ["https://www.w3.org/ns/activitystreams#Public"]}


def create(actor: FakeActor, obj: Any, *, by: str | None = None) -> dict[str, Any]:
    object_id = obj["id"] if isinstance(obj, dict) else obj
    return {"id": f"{object_id}/activity", "type": "Create", "actor": by or actor.id,
            "object": obj}


def serve_outbox(remote: LoopbackServer, actor: FakeActor, pages: list[list[Any]],
                 *, next_of: dict[int, str] | None = None) -> list[str]:
    """The actor's outbox with ``pages`` (newest first); ``next_of`` overrides
    where page i points next. Returns the page URLs."""
    outbox = actor.id + "/outbox"
    urls = [f"{outbox}/p{i}" for i in range(len(pages))]
    remote.document(outbox.removeprefix(remote.base), {
        "id": outbox, "type": "OrderedCollection", "first": urls[0] if urls else None})
    for i, items in enumerate(pages):
        page = {"id": urls[i], "type": "OrderedCollectionPage", "partOf": outbox,
                "orderedItems": items}
        following = (next_of or {}).get(i, urls[i + 1] if i + 1 < len(pages) else None)
        if following is not None:
            page["next"] = following
        remote.document(urls[i].removeprefix(remote.base), page)
    return urls


async def stored(live: LiveNode) -> dict[str, RemoteObject]:
    async with live.node.db.read() as session:
        return {r.uri: r for r in (await session.exec(select(RemoteObject))).all()}


def page_gets(remote: LoopbackServer, actor: FakeActor) -> int:
    return sum(1 for r in remote.requests if r.method == "GET" and "/outbox" in r.path)


# --- bounded walks ---------------------------------------------------------------------


async def test_an_endless_outbox_is_walked_to_the_page_cap(
        live_node: LiveNode, remote: FakeRemote) -> None:
    alice = remote.add_actor("alice")
    outbox = alice.id + "/outbox"
    remote.document(outbox.removeprefix(remote.base),
                    {"id": outbox, "type": "OrderedCollection", "first": outbox + "/p/1"})
    counter = iter(range(10_000))

    async def endless(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        page = {"id": f"{outbox}/p/{n}", "type": "OrderedCollectionPage",
                "orderedItems": [create(alice, note(alice, next(counter)))],
                "next": f"{outbox}/p/{n + 1}"}
        return web.Response(body=json.dumps(page), content_type=AS_JSON)

    remote.route("GET", "/users/alice/outbox/p/{n}", endless)
    walk = await outbox_sync.backfill(live_node.node, alice.id, bounds=SMALL)
    assert walk.stopped == "pages" and walk.pages == SMALL.max_pages
    assert page_gets(remote, alice) == SMALL.max_pages + 1  # the collection and five pages
    assert len(await stored(live_node)) == SMALL.max_pages


async def test_a_circular_outbox_is_walked_once(live_node: LiveNode, remote: FakeRemote) -> None:
    alice = remote.add_actor("alice")
    urls = serve_outbox(remote, alice, [[create(alice, note(alice, 1))],
                                        [create(alice, note(alice, 2))]])
    serve_outbox(remote, alice, [[create(alice, note(alice, 1))],
                                 [create(alice, note(alice, 2))]], next_of={1: urls[0]})
    walk = await outbox_sync.backfill(live_node.node, alice.id, bounds=SMALL)
    assert walk.stopped == "circular" and walk.pages == 2
    assert sorted(await stored(live_node)) == sorted(note(alice, n)["id"] for n in (1, 2))


async def test_a_huge_page_is_refused_and_nothing_stored(
        live_node: LiveNode, remote: FakeRemote) -> None:
    alice = remote.add_actor("alice")
    urls = serve_outbox(remote, alice, [[]])
    items = [create(alice, note(alice, n)) for n in range(6000)]  # about 1.5 MB
    body = json.dumps({"id": urls[0], "type": "OrderedCollectionPage", "orderedItems": items})
    assert len(body) > 1_048_576
    remote.raw(urls[0].removeprefix(remote.base), body.encode())
    try:
        await outbox_sync.backfill(live_node.node, alice.id, bounds=SMALL)
    except WalkFailed as failed:
        assert failed.reason == "too_large"
    else:
        raise AssertionError("a page over the body limit was read")
    assert await stored(live_node) == {}


async def test_a_slow_peer_costs_one_deadline_and_what_came_before_is_kept(
        live_node: LiveNode, remote: FakeRemote) -> None:
    alice = remote.add_actor("alice")
    urls = serve_outbox(remote, alice, [[create(alice, note(alice, 1))], []])
    remote.hang(urls[1].removeprefix(remote.base), after_headers=True)
    started = time.monotonic()
    walk = await outbox_sync.backfill(
        live_node.node, alice.id,
        bounds=Bounds(max_items=50, max_pages=5, deadline=1.5, max_fetches=5))
    assert time.monotonic() - started < 5
    assert walk.stopped == "deadline" and not walk.complete
    assert list(await stored(live_node)) == [note(alice, 1)["id"]]


async def test_pages_and_objects_on_another_origin_are_refused(
        live_node: LiveNode, remote: FakeRemote) -> None:
    alice = remote.add_actor("alice")
    async with LoopbackServer() as elsewhere:
        foreign_page = elsewhere.url("/outbox/p9")
        elsewhere.document("/outbox/p9", {
            "id": foreign_page, "type": "OrderedCollectionPage",
            "orderedItems": [create(alice, note(alice, 9))]})
        foreign_note = note(alice, 7, base=elsewhere.base)
        elsewhere.document(foreign_note["id"].removeprefix(elsewhere.base), foreign_note)
        serve_outbox(remote, alice, [[
            create(alice, note(alice, 1)),
            create(alice, foreign_note),  # embedded, but not on alice's origin
            create(alice, foreign_note["id"]),  # by id, on another origin
        ]], next_of={0: foreign_page})
        walk = await outbox_sync.backfill(live_node.node, alice.id, bounds=SMALL)
        assert elsewhere.requests == []  # nothing fetched from the other origin
    assert walk.stopped == "foreign_page" and walk.refused == 2
    assert list(await stored(live_node)) == [note(alice, 1)["id"]]


async def test_items_by_another_actor_are_not_stored(
        live_node: LiveNode, remote: FakeRemote) -> None:
    alice = remote.add_actor("alice")
    mallory = remote.add_actor("mallory")
    by_id = note(alice, 3)
    remote.document(by_id["id"].removeprefix(remote.base), by_id)
    serve_outbox(remote, alice, [[
        create(alice, note(alice, 1)),
        create(alice, note(mallory, 2), by=mallory.id),  # another actor's activity
        create(alice, note(alice, 4, author=mallory.id)),  # alice's Create, mallory's post
        create(alice, by_id["id"]),  # alice's own, given by id: fetched from its origin
    ]])
    walk = await outbox_sync.backfill(live_node.node, alice.id, bounds=SMALL)
    assert walk.refused == 2 and walk.fetches == 1
    rows = await stored(live_node)
    assert sorted(rows) == sorted([note(alice, 1)["id"], by_id["id"]])
    assert {r.actor_uri for r in rows.values()} == {alice.id}


async def test_count_and_age_bound_a_backfill(live_node: LiveNode, remote: FakeRemote) -> None:
    alice = remote.add_actor("alice")
    fresh = [create(alice, note(alice, n, days_ago=n)) for n in range(3)]
    old = [create(alice, note(alice, n, days_ago=100 + n)) for n in range(3, 6)]
    serve_outbox(remote, alice, [fresh, old])
    walk = await outbox_sync.backfill(live_node.node, alice.id, bounds=SMALL)
    assert walk.stopped == "age" and len(await stored(live_node)) == 3

    bob = remote.add_actor("bob")
    serve_outbox(remote, bob, [[create(bob, note(bob, n)) for n in range(30)]])
    walk = await outbox_sync.backfill(live_node.node, bob.id,
                                      bounds=Bounds(max_items=10, max_pages=5))
    assert walk.stopped == "count"
    assert len([r for r in (await stored(live_node)).values() if r.actor_uri == bob.id]) == 10


# --- catch-up ----------------------------------------------------------------------------


async def test_catch_up_with_nothing_new_costs_one_get_and_stops_at_what_it_has(
        live_node: LiveNode, remote: FakeRemote) -> None:
    alice = remote.add_actor("alice")
    serve_outbox(remote, alice, [[create(alice, note(alice, n)) for n in (3, 2)],
                                 [create(alice, note(alice, 1))]])
    state = SyncState(actor_uri=alice.id)
    walk = await outbox_sync.sync_one(live_node.node, state)
    assert walk.complete and walk.stopped == "end" and len(await stored(live_node)) == 3
    state.backfilled_at = utcnow()
    state.first_item_id, state.first_page = walk.first_item_id, walk.first_page

    before = page_gets(remote, alice)
    again = await outbox_sync.sync_one(live_node.node, state)
    assert again.stopped == "unchanged" and page_gets(remote, alice) == before + 1

    # Two new posts: the walk stops at the first one it has, on the first page.
    serve_outbox(remote, alice, [[create(alice, note(alice, n)) for n in (5, 4, 3, 2)],
                                 [create(alice, note(alice, 1))]])
    before = page_gets(remote, alice)
    newer = await outbox_sync.sync_one(live_node.node, state)
    assert newer.stopped == "known" and page_gets(remote, alice) == before + 1
    rows = await stored(live_node)
    assert len(rows) == 5 and rows[note(alice, 5)["id"]].source == "sync"


async def test_two_workers_never_hold_one_actor(database_url: str, tmp_path: Any) -> None:
    # A node without running workers: only the two under test claim.
    from node.core.settings import Settings
    from node.federation.runtime import Node

    node = Node(Settings.load(environ={"HAMBASTEGI_DATABASE_URL": database_url,
                                       "HAMBASTEGI_DATA_DIR": str(tmp_path)}))
    try:
        async with node.db.write() as session:
            await outbox_sync.schedule(session, "https://peer.example/users/a")
        first = outbox_sync.SyncWorker(node, period=60, poll=1)
        second = outbox_sync.SyncWorker(node, period=60, poll=1)
        claims = await asyncio.gather(first.claim(), second.claim())
        assert sorted(len(c) for c in claims) == [0, 1]
        # Held: neither claims it again until the lease ends.
        assert await first.claim() == [] and await second.claim() == []
    finally:
        await node.db.dispose()


def test_a_failing_peer_is_walked_less_and_less_often() -> None:
    rng = random.Random(7)
    period = timedelta(minutes=5)
    ceilings = [max(retry.sync_retry_delay(n, period, rng) for _ in range(50))
                for n in range(1, 12)]
    assert all(c <= retry.SYNC_BACKOFF_CAP for c in ceilings)
    assert ceilings[0] <= period * 2 and ceilings[-1] > period * 16
    assert all(period * 0.9 <= retry.next_sync_delay(period, rng) <= period * 1.1
               for _ in range(50))


# --- what the inbox keeps ----------------------------------------------------------------


async def follow_row(live: LiveNode, actor: FakeActor) -> None:
    await operations.create_group(live.node, "koeln", display_name="Köln", language="de")
    async with live.node.db.write() as session:
        group = (await session.exec(
            select(LocalActor).where(col(LocalActor.username) == "koeln"))).one()
        session.add(Following(local_actor_id=group.id or 0, target_uri=actor.id,
                              follow_activity_id=live.node.urls.base + "/follow/1",
                              state="accepted"))


async def test_the_inbox_keeps_posts_of_followed_actors_only_their_own(
        live_node: LiveNode, remote: FakeRemote) -> None:
    alice = remote.add_actor("alice")
    stranger = remote.add_actor("stranger")
    await follow_row(live_node, alice)
    inbox = live_node.url("/inbox")
    kept = note(alice, 1)
    for actor, obj in ((alice, kept), (stranger, note(stranger, 2))):
        response = await signed_post(inbox, remote.activity(actor, "Create", obj), actor)
        assert response.status_code == 202

    async def arrived() -> dict[str, RemoteObject] | None:
        rows = await stored(live_node)
        return rows if kept["id"] in rows else None

    rows = await wait_for(arrived, what="the followed actor's post")
    assert rows[kept["id"]].source == "inbox" and rows[kept["id"]].moderation_state == "approved"

    # Its Update changes it; a Delete leaves a tombstone that a later copy cannot undo.
    edited = {**kept, "content": "<p>edited</p><script>x()</script>"}
    await signed_post(inbox, remote.activity(alice, "Update", edited), alice)

    async def updated() -> bool:
        row = (await stored(live_node))[kept["id"]]
        return "edited" in row.data.get("content", "")

    await wait_for(updated, what="the Update applied")
    assert "script" not in (await stored(live_node))[kept["id"]].data["content"]
    await signed_post(inbox, remote.activity(alice, "Delete", kept["id"]), alice)

    async def deleted() -> bool:
        return (await stored(live_node))[kept["id"]].deleted

    await wait_for(deleted, what="the Delete applied")
    walk_copy = [create(alice, kept)]
    serve_outbox(remote, alice, [walk_copy])
    await outbox_sync.backfill(live_node.node, alice.id, bounds=SMALL)
    row = (await stored(live_node))[kept["id"]]
    assert row.deleted and row.data["type"] == "Tombstone"
    # The stranger's post (not followed) was handled and stored in the inbox table only.
    async def handled() -> bool:
        async with live_node.node.db.read() as session:
            states = (await session.exec(select(InboxItem.state))).all()
        return len(states) == 4 and set(states) == {"done"}

    await wait_for(handled, what="every inbox item handled")
    assert note(stranger, 2)["id"] not in await stored(live_node)


def test_stored_copies_are_sanitised_and_bounded() -> None:
    from node.federation.remote_posts import MAX_LIST, MAX_STRING, clean_object

    hostile = {
        "id": "https://peer.example/notes/1", "type": "Note",
        "content": "<p>ok</p><script>steal()</script>" + "x" * 200_000,
        "contentMap": {f"l{i}": "<img src=x onerror=alert(1)>" for i in range(100)},
        "name": "n" * 10_000, "to": [f"https://peer.example/u/{i}" for i in range(1000)],
        "url": {"type": "Link", "href": "https://peer.example/x", "id": "https://peer.example/x",
                "deep": {"deeper": ["…"]}},
        "attachment": [{"huge": "x" * 100_000}], "bto": ["secret"],
    }
    kept = clean_object(hostile)
    assert "script" not in kept["content"] and len(kept["content"]) <= 70_000
    assert all("onerror" not in v for v in kept["contentMap"].values())
    assert len(kept["contentMap"]) == 20
    assert len(kept["name"]) == MAX_STRING and len(kept["to"]) == MAX_LIST
    assert kept["url"] == "https://peer.example/x"  # an embedded object kept as its id
    assert "attachment" not in kept and "bto" not in kept
    assert len(json.dumps(kept)) < 200_000
