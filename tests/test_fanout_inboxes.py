"""Which inboxes a post to a group's followers goes to: once per shared inbox, a
shared inbox only on the follower's own origin, and a bound per host.

Followers are fake remote actors that really follow over signed HTTP (so the
node fetches and stores their documents as it would anyone's); the post is
then really delivered, and the fake servers count what reaches them.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from sqlalchemy import func
from sqlmodel import select

from node.federation import keys
from node.federation.delivery import MAX_INBOXES_PER_HOST
from node.groups import operations
from node.storage.models import Activity, Follower
from tests.conftest import LiveNode, wait_for
from tests.delivery_helpers import activity_states, choose_inboxes
from tests.fediverse import FakeActor, FakeRemote, signed_post

GROUP = "koeln"


@functools.cache
def shared_keys() -> tuple[RSAPrivateKey, Ed25519PrivateKey]:
    """One key pair for every fake follower: RSA generation is slow, and which key
    signs does not matter here."""
    return keys.generate_rsa(), keys.generate_ed25519()


@pytest.fixture
async def other_remote() -> AsyncIterator[FakeRemote]:
    fake = FakeRemote()
    await fake.start()
    yield fake
    await fake.stop()


def add_follower(remote: FakeRemote, name: str, shared_inbox: str | None) -> FakeActor:
    rsa, ed = shared_keys()
    actor = FakeActor(name, rsa, ed, remote.base)
    document: dict[str, Any] = actor.document()
    if shared_inbox is None:
        document.pop("endpoints")
    else:
        document["endpoints"] = {"sharedInbox": shared_inbox}
    actor.doc_override = document
    remote.actors[name] = actor
    return actor


async def follow_all(live: LiveNode, followers: list[FakeActor]) -> None:
    group = live.node.urls.actor(GROUP)
    for actor in followers:
        activity = {"@context": "https://www.w3.org/ns/activitystreams",
                    "id": f"{actor.id}/follows/1", "type": "Follow", "actor": actor.id,
                    "object": group}
        response = await signed_post(f"{group}/inbox", activity, actor)
        assert response.status_code == 202, response.text

    async def all_accepted() -> bool:
        async with live.node.db.read() as session:
            accepted = (await session.exec(select(func.count()).select_from(Follower).where(
                Follower.state == "accepted"))).one()
        return int(accepted) == len(followers)

    await wait_for(all_accepted, what="every follower accepted")


async def publish_and_deliver(live: LiveNode) -> None:
    """Publish a note and wait until every queued delivery of it is finished."""
    await operations.publish_note(live.node, GROUP, text="Solidarity with the dockers")

    async def delivered() -> bool:
        async with live.node.db.read() as session:
            create = (await session.exec(select(Activity.id).where(
                Activity.activity_type == "Create"))).first()
        if create is None:
            return False
        states = await activity_states(live.node.db, create)
        return bool(states) and set(states) <= {"delivered", "failed"}

    await wait_for(delivered, what="the note's deliveries")


def creates(remote: FakeRemote) -> Counter[str]:
    return Counter(r.path for r in remote.received_of_type("Create"))


async def test_followers_sharing_a_shared_inbox_get_one_post(
        live_node: LiveNode, remote: FakeRemote) -> None:
    await operations.create_group(live_node.node, GROUP, display_name="Köln", language="de")
    followers = [add_follower(remote, f"worker{i}", f"{remote.base}/inbox") for i in range(20)]
    await follow_all(live_node, followers)
    await publish_and_deliver(live_node)
    assert creates(remote) == Counter({"/inbox": 1})


async def test_shared_inbox_on_another_origin_is_not_used(
        live_node: LiveNode, remote: FakeRemote, other_remote: FakeRemote) -> None:
    """Followers on one server naming another server's inbox as their shared inbox
    get the post at their own inboxes; the other server gets nothing."""
    await operations.create_group(live_node.node, GROUP, display_name="Köln", language="de")
    followers = [add_follower(remote, f"worker{i}", f"{other_remote.base}/inbox")
                 for i in range(3)]
    await follow_all(live_node, followers)
    await publish_and_deliver(live_node)
    assert creates(other_remote) == Counter()
    assert creates(remote) == Counter({f"/users/worker{i}/inbox": 1 for i in range(3)})


async def test_one_host_gets_at_most_the_bound_of_posts(
        live_node: LiveNode, remote: FakeRemote) -> None:
    """Past the bound, a host without a shared inbox gets no more copies."""
    await operations.create_group(live_node.node, GROUP, display_name="Köln", language="de")
    count = MAX_INBOXES_PER_HOST + 10
    followers = [add_follower(remote, f"worker{i:03}", None) for i in range(count)]
    await follow_all(live_node, followers)
    await publish_and_deliver(live_node)
    received = creates(remote)
    assert len(received) == MAX_INBOXES_PER_HOST
    assert set(received.values()) == {1}


async def test_followers_past_the_bound_go_to_the_hosts_shared_inbox(
        live_node: LiveNode, remote: FakeRemote) -> None:
    await operations.create_group(live_node.node, GROUP, display_name="Köln", language="de")
    count = MAX_INBOXES_PER_HOST + 10
    # Everyone names a shared inbox of their own (on their own origin), one of them
    # the server's real one: distinct URLs, each legitimate on its face.
    followers = [add_follower(remote, f"worker{i:03}", f"{remote.base}/users/worker{i:03}/inbox")
                 for i in range(count - 2)]
    followers += [add_follower(remote, name, f"{remote.base}/inbox")
                  for name in ("alice", "bob")]
    await follow_all(live_node, followers)
    await publish_and_deliver(live_node)
    received = creates(remote)
    assert len(received) == MAX_INBOXES_PER_HOST
    assert received["/inbox"] == 1  # the most used shared inbox, kept first
    assert set(received.values()) == {1}


def test_choose_inboxes_rules() -> None:
    a = "https://a.example"
    followers: list[tuple[str, str, str | None]] = [
        (f"{a}/users/1", f"{a}/users/1/inbox", f"{a}/inbox"),
        (f"{a}/users/2", f"{a}/users/2/inbox", f"{a}/inbox"),
        # A shared inbox on another origin (here another port) is ignored.
        (f"{a}/users/3", f"{a}/users/3/inbox", "https://a.example:8443/inbox"),
        (f"{a}/users/4", f"{a}/users/4/inbox", "https://b.example/inbox"),
        (f"{a}/users/5", f"{a}/users/5/inbox", None),
        # Undeliverable URLs are dropped; the default port is the same origin.
        ("https://c.example/u", "mailto:x@c.example", "https://c.example:443/inbox"),
        ("https://d.example/u", "ftp://d.example/in", None),
    ]
    assert choose_inboxes(followers) == sorted([
        f"{a}/inbox", f"{a}/users/3/inbox", f"{a}/users/4/inbox", f"{a}/users/5/inbox",
        "https://c.example:443/inbox"])
    many = [(f"{a}/users/{i}", f"{a}/users/{i}/inbox", None) for i in range(5)]
    assert len(choose_inboxes(many, per_host=3)) == 3
    assert choose_inboxes([*many, (f"{a}/s", f"{a}/s/inbox", f"{a}/inbox")],
                          per_host=3)[0] == f"{a}/inbox"
