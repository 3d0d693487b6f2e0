"""No network I/O inside a write transaction.

On SQLite a write transaction holds the only write lock of the database, so a
request made inside one (to a slow or hanging server) stalls every other write
of the process until it times out. ``Database.write()`` marks its scope and the
guarded client raises inside it in strict mode (on in every test, via conftest).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlmodel import select

from node.federation.fetch import GuardedClient, allow_all_policy
from node.groups import operations
from node.storage.db import Database, in_write_transaction, utcnow
from node.storage.models import Activity, Fanout, Following, LocalActor, RemoteActor
from tests.conftest import LiveNode, wait_for
from tests.fediverse import RawServer

GROUP = "koeln"


@pytest.fixture
async def hanging() -> AsyncIterator[RawServer]:
    """Accepts connections and reads, but never answers; ``hang_up()`` closes every
    connection at once."""
    async with RawServer() as server:
        yield server


async def follow_stale_actor(live: LiveNode, hanging: RawServer) -> str:
    """Our group follows an actor on the hanging server, whose cached document is
    two days old (past the cache's lifetime, so unfollow would refetch it)."""
    node = live.node
    await operations.create_group(node, GROUP, display_name="Köln", language="de")
    target = f"http://127.0.0.1:{hanging.port}/users/bob"
    async with node.db.write() as session:
        group = (await session.exec(select(LocalActor).where(
            LocalActor.username == GROUP))).one()
        session.add(RemoteActor(uri=target, username="bob", domain=f"127.0.0.1:{hanging.port}",
                                inbox=f"{target}/inbox",
                                fetched_at=utcnow() - timedelta(days=2)))
        session.add(Following(local_actor_id=group.id or 0, target_uri=target,
                              follow_activity_id=node.urls.activity("f1"), state="accepted"))
    return target


async def test_unfollow_does_not_hold_the_write_lock_while_the_remote_hangs(
        live_node: LiveNode, hanging: RawServer) -> None:
    node = live_node.node
    # This test is about ordering, not the guard: let a request inside a write
    # through (logged), as production does, and see whether other writes stall.
    node.client.strict_transactions = False
    target = await follow_stale_actor(live_node, hanging)
    unfollow = asyncio.create_task(operations.unfollow(node, GROUP, target))

    async def fetching() -> bool:
        return bool(hanging.connections)

    await wait_for(fetching, what="unfollow's fetch of the stale actor")
    # Another write of the same process goes through while the fetch hangs.
    await asyncio.wait_for(
        operations.publish_note(node, GROUP, text="Still here, still organising"), timeout=5)
    hanging.hang_up()
    await asyncio.wait_for(unfollow, timeout=15)
    # The fetch failed, so the cached inbox (stale, but the best we know) gets the Undo.
    async with node.db.read() as session:
        assert (await session.exec(select(Following))).all() == []
        undo = (await session.exec(select(Activity).where(
            Activity.activity_type == "Undo"))).one()
        rows = (await session.exec(select(Fanout).where(
            Fanout.activity_id == undo.id))).all()
    assert [row.inboxes for row in rows] == [[f"{target}/inbox"]]


async def test_unfollow_makes_no_request_inside_a_write(
        live_node: LiveNode, hanging: RawServer) -> None:
    """Strict mode (as in every test): unfollow with a stale cache must not trip the guard."""
    node = live_node.node
    assert node.client.strict_transactions
    target = await follow_stale_actor(live_node, hanging)
    unfollow = asyncio.create_task(operations.unfollow(node, GROUP, target))

    async def fetching() -> bool:
        if unfollow.done():
            unfollow.result()  # a RuntimeError from the guard surfaces here
        return bool(hanging.connections)

    await wait_for(fetching, what="unfollow's fetch of the stale actor")
    hanging.hang_up()
    await asyncio.wait_for(unfollow, timeout=15)


async def test_the_guard_trips_on_a_request_inside_a_write(db: Database,
                                                           hanging: RawServer) -> None:
    url = f"http://127.0.0.1:{hanging.port}/users/bob"
    async with GuardedClient(policy=allow_all_policy, user_agent="test",
                             strict_transactions=True) as client:
        assert not in_write_transaction()
        async with db.write():
            assert in_write_transaction()
            with pytest.raises(RuntimeError, match="network I/O inside a write transaction"):
                await client.fetch_activity(url)
            with pytest.raises(RuntimeError, match="network I/O inside a write transaction"):
                await client.post_signed(url + "/inbox", b"{}", {})
        assert not in_write_transaction()
        assert hanging.connections == []  # refused before connecting
        # A task started inside a write is not inside it once the write has ended.
        started = asyncio.Event()
        release = asyncio.Event()

        async def later() -> bool:
            started.set()
            await release.wait()
            return in_write_transaction()

        async with db.write():
            task = asyncio.create_task(later())
            await started.wait()
        release.set()
        assert await task is False


async def test_the_guard_is_on_in_tests() -> None:
    async with GuardedClient(policy=allow_all_policy, user_agent="test") as client:
        assert client.strict_transactions

