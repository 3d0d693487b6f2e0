"""The inbox under pressure and under attack: a locked database, key-id
squatting, key rotation to a new key id, fetch amplification, malformed ids."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from typing import Any

from aiohttp import web
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlmodel import col, select

from node.core.cache import HostBuckets
from node.federation import keys
from node.federation.inbox_queue import new_item
from node.storage.models import Follower, InboxItem, RemoteActor
from tests.conftest import PG_URL, LiveNode, wait_for
from tests.fediverse import AS_JSON, FakeRemote, LoopbackServer, new_actor, signed_post
from tests.test_inbox import count, follow, setup_group

# --- a locked database: 503 + Retry-After, never a 500, nothing 202'd lost --------------


async def test_database_locked_past_the_busy_timeout_answers_503_with_retry_after(
        live_node: LiveNode, remote: FakeRemote) -> None:
    group = await setup_group(live_node)
    alice = remote.add_actor("alice")
    await follow(live_node, remote, alice, group)  # key cached: the lock is the only obstacle
    await wait_for(lambda: count(live_node, Follower), what="follower")
    before = await count(live_node, InboxItem)
    release = threading.Event()
    locked = threading.Event()

    def hold_lock() -> None:
        # A second connection holds the write lock longer than the node's busy timeout.
        conn = sqlite3.connect(live_node.node.settings.database_url.split("///", 1)[1],
                               timeout=30, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        locked.set()
        # Held until every sender has its answer: the node gives up on the lock
        # (its busy or store timeout) while we still hold it.
        release.wait(60)
        conn.execute("ROLLBACK")
        conn.close()

    likes = [remote.activity(alice, "Like", group) for _ in range(4)]
    if PG_URL is None:
        holder = threading.Thread(target=hold_lock)
        holder.start()
        assert await asyncio.to_thread(locked.wait, 10)
        try:
            responses = await asyncio.gather(
                *(signed_post(f"{group}/inbox", like, alice) for like in likes))
        finally:
            release.set()
            await asyncio.to_thread(holder.join)
        statuses = [r.status_code for r in responses]
        assert 500 not in statuses, statuses
        assert 503 in statuses, statuses
        for response in responses:
            if response.status_code == 503:
                assert int(response.headers["Retry-After"]) > 0
                assert response.json()["reason"] == "database_busy"
    # The senders retry (as a 503 asks): now everything is stored exactly once.
    for like in likes:
        assert (await signed_post(f"{group}/inbox", like, alice)).status_code == 202
    assert await count(live_node, InboxItem) == before + len(likes)


async def test_database_driver_errors_answer_503_not_500(
        live_node: LiveNode, remote: FakeRemote, monkeypatch: Any) -> None:
    """PostgreSQL's equivalents: a dropped connection, a failover, a full pool."""
    group = await setup_group(live_node)
    alice = remote.add_actor("alice")
    await follow(live_node, remote, alice, group)
    await wait_for(lambda: count(live_node, Follower), what="follower")
    writer = live_node.node.inbox_writer
    for error in (OperationalError("INSERT", {}, Exception("server closed the connection")),
                  InterfaceError("INSERT", {}, Exception("connection is closed")),
                  TimeoutError()):
        async def broken(batch: list[Any], error: BaseException = error) -> set[str]:
            raise error

        monkeypatch.setattr(writer, "_write", broken)
        response = await signed_post(f"{group}/inbox", remote.activity(alice, "Like", group),
                                     alice)
        assert response.status_code == 503, (error, response.text)
        assert response.headers["Retry-After"]


# --- key-id squatting -------------------------------------------------------------------


async def test_an_actor_listing_another_actors_key_id_does_not_take_it(
        live_node: LiveNode, remote: FakeRemote) -> None:
    group = await setup_group(live_node)
    alice = remote.add_actor("alice")
    mallory = remote.add_actor("mallory")
    # Mallory is known to us first (her row is the older one), then Alice.
    await follow(live_node, remote, mallory, group)
    await follow(live_node, remote, alice, group)

    async def both() -> bool:
        return await count(live_node, Follower) == 2

    await wait_for(both, what="followers")
    # Mallory (same origin) publishes an Update whose publicKey.id is Alice's key id.
    squatting = mallory.document()
    squatting["publicKey"] = {**squatting["publicKey"], "id": alice.key_id}
    mallory.doc_override = squatting
    update = remote.activity(mallory, "Update", squatting)
    assert (await signed_post(f"{live_node.base_url}/inbox", update, mallory)).status_code == 202
    await wait_for(lambda: count(live_node, InboxItem, InboxItem.activity_id == update["id"],
                                 InboxItem.state == "done"), what="update processed")
    # Another process (or this one after the cache's TTL) looks Alice's key up afresh.
    live_node.node.key_cache.clear()
    fetches = sum(remote.fetches.values())
    for _ in range(3):
        like = remote.activity(alice, "Like", group)
        response = await signed_post(f"{group}/inbox", like, alice)
        assert response.status_code == 202, response.text
    assert sum(remote.fetches.values()) == fetches  # the cached row of Alice answers


# --- key rotation to a new key id -------------------------------------------------------


async def test_rotation_to_a_new_key_id_is_refetched_once(live_node: LiveNode,
                                                         remote: FakeRemote) -> None:
    group = await setup_group(live_node)
    alice = remote.add_actor("alice")
    await follow(live_node, remote, alice, group)
    await wait_for(lambda: count(live_node, Follower), what="follower")
    # Alice's server rotates to a new key with a new id (no Update sent).
    alice.rsa = keys.generate_rsa()
    new_key_id = alice.id + "#key-2"
    rotated = alice.document()
    rotated["publicKey"] = {"id": new_key_id, "owner": alice.id,
                            "publicKeyPem": keys.public_to_pem(alice.rsa.public_key())}
    alice.doc_override = rotated
    fetches = remote.fetches[f"/users/{alice.username}"]
    like = remote.activity(alice, "Like", group)
    response = await signed_post(f"{group}/inbox", like, alice, key_id=new_key_id)
    assert response.status_code == 202, response.text
    assert remote.fetches[f"/users/{alice.username}"] == fetches + 1
    # A key id the actor does not list is refetched at most once in a while.
    for n in range(5):
        response = await signed_post(f"{group}/inbox", remote.activity(alice, "Like", group),
                                     alice, key_id=alice.id + f"#nope-{n}")
        assert response.status_code == 401
        assert response.json()["reason"] == "unknown_key"
    assert remote.fetches[f"/users/{alice.username}"] <= fetches + 2


# --- fetch amplification ----------------------------------------------------------------


class HostileRemote(LoopbackServer):
    """A remote that makes every fetch expensive: each hop answers the first
    signature scheme with 401 (a double knock), then redirects three times; the
    signing key is a standalone document whose owner is fetched the same way."""

    def __init__(self) -> None:
        super().__init__()
        self.actor = new_actor("eve", "")
        self.route("GET", "/{kind}/{hop}", self.serve)

    async def start(self) -> None:
        await super().start()
        self.actor.base = self.base

    @property
    def key_id(self) -> str:
        return f"{self.base}/key/0"

    @property
    def actor_id(self) -> str:
        return f"{self.base}/actor/0"

    async def serve(self, request: web.Request) -> web.Response:
        if "Signature-Input" not in request.headers:
            return web.Response(status=401)  # "we only speak RFC 9421": knock again
        kind, hop = request.match_info["kind"], int(request.match_info["hop"])
        if hop < 3:
            return web.Response(status=302, headers={"Location": f"/{kind}/{hop + 1}"})
        pem = keys.public_to_pem(self.actor.rsa.public_key())
        if kind == "key":
            doc: dict[str, Any] = {"id": self.key_id, "type": "CryptographicKey",
                                   "owner": self.actor_id, "publicKeyPem": pem}
        else:
            doc = {"id": self.actor_id, "type": "Person", "inbox": self.actor_id + "/inbox",
                   "preferredUsername": "eve",
                   "publicKey": {"id": self.key_id, "owner": self.actor_id,
                                 "publicKeyPem": pem}}
        return web.Response(body=json.dumps(doc), content_type=AS_JSON)


async def test_one_inbox_post_causes_at_most_three_fetches(live_node: LiveNode) -> None:
    group = await setup_group(live_node)
    async with HostileRemote() as hostile:
        activity = {"id": hostile.actor_id + "/likes/1", "type": "Like",
                    "actor": hostile.actor_id, "object": group}
        response = await signed_post(f"{group}/inbox", activity, hostile.actor,
                                     key_id=hostile.key_id)
        assert response.status_code == 401
        assert len(hostile.requests) <= 3, hostile.paths()


async def test_unknown_key_ids_are_fetched_boundedly_and_failures_cached(
        live_node: LiveNode, remote: FakeRemote) -> None:
    group = await setup_group(live_node)
    # A small bucket that barely refills, so the bound is visible with 30 senders.
    live_node.node.fetch_buckets = HostBuckets(capacity=10.0, rate=0.01)
    # Unknown to the remote: their documents are 410 Gone.
    ghosts = [new_actor(f"ghost{n}", remote.base) for n in range(30)]

    async def send_all() -> list[int]:
        codes = []
        for ghost in ghosts:
            response = await signed_post(f"{group}/inbox",
                                         remote.activity(ghost, "Like", group), ghost)
            codes.append(response.status_code)
        return codes

    assert set(await send_all()) == {401}
    first = sum(remote.fetches.values())
    assert first <= 12, remote.fetches  # the host's token bucket, not one GET per key id
    assert set(await send_all()) == {401}
    assert sum(remote.fetches.values()) == first  # failures are cached briefly


# --- malformed ids ----------------------------------------------------------------------


async def test_malformed_activity_or_object_ids_are_400(live_node: LiveNode,
                                                        remote: FakeRemote) -> None:
    group = await setup_group(live_node)
    alice = remote.add_actor("alice")
    await follow(live_node, remote, alice, group)
    await wait_for(lambda: count(live_node, Follower), what="follower")
    before = await count(live_node, InboxItem)
    bad_activity = remote.activity(alice, "Like", group)
    bad_activity["id"] = "http://[::1"
    bad_object = remote.activity(alice, "Create", {"id": "http://[::1", "type": "Note",
                                                   "content": "x"})
    bad_update = remote.activity(alice, "Update", {"id": "https://[::1/x", "type": "Note"})
    for activity in (bad_activity, bad_object, bad_update):
        response = await signed_post(f"{group}/inbox", activity, alice)
        assert response.status_code == 400, (activity, response.text)
    assert await count(live_node, InboxItem) == before


# --- first contact: concurrent key fetches, single-flight, the actor in the group commit -----


async def test_a_burst_from_one_new_actor_fetches_its_document_once(
        live_node: LiveNode, remote: FakeRemote) -> None:
    group = await setup_group(live_node)
    alice = remote.add_actor("alice")
    fetch = remote.hold(lambda r: r.path == "/users/alice")  # the first GET waits
    likes = [remote.activity(alice, "Like", group) for _ in range(12)]
    posts = [asyncio.ensure_future(signed_post(f"{group}/inbox", like, alice))
             for like in likes]
    flights = live_node.node.key_fetches

    async def all_waiting() -> bool:
        return flights.waiting((alice.key_id, False)) == len(likes)

    await wait_for(all_waiting, what="every request waiting for the one fetch")
    fetch.release()
    assert [r.status_code for r in await asyncio.gather(*posts)] == [202] * len(likes)
    assert remote.fetches["/users/alice"] == 1, remote.fetches
    assert await count(live_node, RemoteActor) == 1
    assert await count(live_node, InboxItem) == len(likes)


async def test_concurrent_first_contacts_are_all_accepted_and_their_actors_stored(
        live_node: LiveNode, remote: FakeRemote) -> None:
    group = await setup_group(live_node)
    actors = [remote.add_actor(f"new{n}") for n in range(25)]
    responses = await asyncio.gather(*(
        signed_post(f"{group}/inbox", remote.activity(actor, "Follow", group), actor)
        for actor in actors))
    assert [r.status_code for r in responses] == [202] * len(actors)
    assert sum(remote.fetches.values()) == len(actors)
    # Stored in the commit of their activities: there before the worker looks.
    async with live_node.node.db.read() as session:
        stored = set((await session.exec(select(RemoteActor.uri))).all())
        queued = set((await session.exec(select(InboxItem.actor_uri))).all())
    assert stored == queued == {actor.id for actor in actors}

    async def all_followers() -> bool:
        return await count(live_node, Follower) == len(actors)

    await wait_for(all_followers, what="every follow handled")


async def test_a_remote_hanging_on_the_actor_fetch_does_not_block_other_actors(
        live_node: LiveNode, remote: FakeRemote) -> None:
    group = await setup_group(live_node)
    async with LoopbackServer() as tarpit:
        slow = new_actor("slow", tarpit.base)
        tarpit.hang("/users/slow")
        stuck = asyncio.ensure_future(
            signed_post(f"{group}/inbox", remote.activity(slow, "Follow", group), slow))
        await wait_for(lambda: _true(tarpit.requests), what="the hanging fetch")
        others = [remote.add_actor(f"quick{n}") for n in range(5)]
        responses = await asyncio.gather(*(
            signed_post(f"{group}/inbox", remote.activity(actor, "Follow", group), actor)
            for actor in others))
        assert [r.status_code for r in responses] == [202] * len(others)
        assert not stuck.done()
    assert (await stuck).status_code == 401  # the tarpit closed: no key
    assert await count(live_node, RemoteActor, col(RemoteActor.uri) == slow.id) == 0


async def _true(value: Any) -> bool:
    return bool(value)


async def test_an_actor_document_with_another_key_is_refused_and_nothing_stored(
        live_node: LiveNode, remote: FakeRemote) -> None:
    group = await setup_group(live_node)
    mallory = remote.add_actor("mallory")
    document = mallory.document()
    other_key = keys.generate_rsa()
    document["publicKey"] = {**document["publicKey"],
                             "publicKeyPem": keys.public_to_pem(other_key.public_key())}
    mallory.doc_override = document
    response = await signed_post(f"{group}/inbox", remote.activity(mallory, "Follow", group),
                                 mallory)
    assert response.status_code == 401
    assert response.json()["reason"] == "bad_signature"
    # Refused after the lookup: neither the activity nor its actor is stored.
    assert await count(live_node, RemoteActor) == 0
    assert await count(live_node, InboxItem) == 0


async def test_an_oversized_actor_document_is_refused_and_nothing_stored(
        live_node: LiveNode, remote: FakeRemote) -> None:
    group = await setup_group(live_node)
    bloated = remote.add_actor("bloated")
    bloated.doc_override = {**bloated.document(), "summary": "x" * (2 * 1024 * 1024)}
    response = await signed_post(f"{group}/inbox", remote.activity(bloated, "Follow", group),
                                 bloated)
    assert response.status_code == 401
    assert response.json()["reason"] == "key_unavailable"
    assert await count(live_node, RemoteActor) == 0
    assert await count(live_node, InboxItem) == 0


async def test_a_row_the_database_refuses_fails_alone_not_its_whole_batch(
        live_node: LiveNode) -> None:
    """A group deleted between its lookup and the commit: the row's foreign key
    fails; the requests that arrived with it are stored all the same."""
    writer = live_node.node.inbox_writer
    rows = [new_item({"id": f"https://r.example/a/{n}"}, f"https://r.example/a/{n}", "Like",
                     "https://r.example/u", None) for n in range(3)]
    orphan = new_item({"id": "https://r.example/a/x"}, "https://r.example/a/x", "Like",
                      "https://r.example/u", 999_999)
    results = await asyncio.gather(*(writer.add(row) for row in [rows[0], orphan, *rows[1:]]),
                                   return_exceptions=True)
    assert results[0] is True and results[2] is True and results[3] is True, results
    assert isinstance(results[1], IntegrityError), results
    assert await count(live_node, InboxItem) == 3
