"""Wake-ups across processes (node/storage/wakeup.py): what another process
writes reaches this node's workers at once, though they poll only once an
hour here (``HAMBASTEGI_WORKER_POLL_SECONDS=3600``) — the wake-up, not the
poll, must have done it. The other process is a second ``Database`` or the
real CLI."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlmodel import select

from node.core.settings import Settings
from node.federation.delivery import DeliveryWorker, prepare_follower
from node.federation.inbox_queue import InboxWorker, InboxWriter, new_item
from node.federation.local_actors import get_group
from node.federation.runtime import Node
from node.groups import operations
from node.storage.db import Database
from node.storage.models import Follower, InboxItem
from node.storage.states import FollowerState, InboxState
from node.storage.wakeup import PostgresWakeup, SqliteWakeup, WalIndex, asyncpg_dsn
from tests.conftest import DatabaseFactory, free_port, run_cli, wait_for
from tests.fediverse import InboxSink

HOUR = "3600"


class Running:
    def __init__(self, node: Node, env: dict[str, str], inbox: InboxWorker,
                 delivery: DeliveryWorker) -> None:
        self.node = node
        self.env = env
        self.inbox = inbox
        self.delivery = delivery

    async def idle(self) -> bool:
        return self.inbox.idle and self.delivery.idle

    async def store_elsewhere(self) -> str:
        """An inbox item stored through another Database: another process's write."""
        other = Database(self.env["HAMBASTEGI_DATABASE_URL"])
        activity_id = f"https://remote.example/activities/{secrets.token_hex(4)}"
        try:
            await InboxWriter(other).add(new_item(
                {"id": activity_id, "type": "Like", "actor": "https://remote.example/a"},
                activity_id, "Like", "https://remote.example/a", None))
        finally:
            await other.dispose()
        return activity_id

    async def state_of(self, activity_id: str) -> str | None:
        async with self.node.db.read() as session:
            item = (await session.exec(select(InboxItem)
                                       .where(InboxItem.activity_id == activity_id))).first()
        return item.state if item is not None else None


@pytest.fixture
async def running(tmp_path: Path, databases: DatabaseFactory) -> AsyncIterator[Running]:
    url = await databases.new()
    env = {**os.environ, "HAMBASTEGI_DATABASE_URL": url,
           "HAMBASTEGI_DATA_DIR": str(tmp_path / "data"),
           "HAMBASTEGI_BASE_URL": "http://127.0.0.1:9",
           "HAMBASTEGI_ALLOW_PRIVATE_NETWORKS": "1",
           "HAMBASTEGI_WORKER_POLL_SECONDS": HOUR}
    node = Node(Settings.load(environ=env))
    await node.start()
    await operations.create_group(node, "koeln", display_name="Köln", language="de")
    stop = asyncio.Event()
    inbox, delivery = node.inbox_worker(), node.delivery_worker()
    tasks = [asyncio.create_task(inbox.run(stop)), asyncio.create_task(delivery.run(stop))]
    running = Running(node, env, inbox, delivery)
    await wait_for(running.idle, what="workers idle")
    yield running
    stop.set()
    await asyncio.gather(*tasks)
    await node.close()


async def test_an_item_stored_by_another_process_wakes_the_inbox_worker(
        running: Running) -> None:
    activity_id = await running.store_elsewhere()

    async def done() -> bool:
        return await running.state_of(activity_id) == InboxState.DONE

    await wait_for(done, timeout=10, what="the item handled")
    assert running.inbox.done == 1


async def test_a_note_published_by_the_cli_is_delivered_without_waiting_for_the_poll(
        running: Running) -> None:
    sink = InboxSink()
    await sink.start()
    try:
        async with running.node.db.write() as session:
            group = await get_group(session, "koeln")
            assert group is not None and group.id is not None
            await prepare_follower(session, Follower(
                local_actor_id=group.id, actor_uri=f"{sink.base}/users/a",
                inbox=sink.inbox("a"), follow_activity_id=f"{sink.base}/f/1",
                state=FollowerState.ACCEPTED))
        await wait_for(running.idle, what="workers idle again")
        result = await asyncio.to_thread(run_cli, running.env, "publish", "note", "koeln",
                                         "--text", "hello from the CLI")
        assert result.returncode == 0, result.stderr

        async def delivered() -> bool:
            return sum(sink.received.values()) == 1

        await wait_for(delivered, timeout=10, what="the Create delivered")
        assert running.delivery.sent == 1
    finally:
        await sink.stop()


async def test_wakeups_are_not_lost_for_long_when_the_listener_breaks(
        running: Running) -> None:
    wakeup = running.node.wakeup
    if isinstance(wakeup, PostgresWakeup):
        async def listening() -> bool:
            return wakeup.listening and wakeup.backend_pid is not None

        await wait_for(listening, what="the listener connected")
        admin = await asyncpg.connect(asyncpg_dsn(running.env["HAMBASTEGI_DATABASE_URL"]))
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", wakeup.backend_pid)
        finally:
            await admin.close()
        activity_id = await running.store_elsewhere()
    else:
        # SQLite has no connection to lose; its break is the wal index unreadable
        # for a while (the file gone while no connection is open).
        assert isinstance(wakeup, SqliteWakeup)
        real = wakeup.wal_index
        wakeup.wal_index = WalIndex(real.path.with_name("missing-shm"))
        activity_id = await running.store_elsewhere()
        wakeup.wal_index = real

    async def done() -> bool:
        return await running.state_of(activity_id) == InboxState.DONE

    await wait_for(done, timeout=10, what="the item handled after the break")
    if isinstance(wakeup, PostgresWakeup):
        async def back() -> bool:
            return wakeup.listening and wakeup.connects >= 2

        await wait_for(back, what="the listener back")
        again = await running.store_elsewhere()

        async def done_again() -> bool:
            return await running.state_of(again) == InboxState.DONE

        await wait_for(done_again, timeout=10, what="a later item handled")


async def test_waiters_poll_while_the_listener_cannot_connect() -> None:
    """No database at the address: each waiter still returns every fallback period."""
    wakeup = PostgresWakeup(f"postgresql://nobody@127.0.0.1:{free_port()}/none",
                            fallback_seconds=0.05)
    waiter = wakeup.waiter()
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        for _ in range(3):
            await waiter.wait(30)
        assert loop.time() - started < 10
        assert not wakeup.listening
    finally:
        await wakeup.close()


async def test_each_waiter_sees_a_change_that_came_while_it_was_busy() -> None:
    wakeup = SqliteWakeup(WalIndex(Path("/nonexistent")), interval=3600)
    first, second = wakeup.waiter(), wakeup.waiter()
    wakeup.bump()  # both were busy: both must return at once, the second too
    await asyncio.wait_for(first.wait(3600), 5)
    await asyncio.wait_for(second.wait(3600), 5)
    # Nothing new since: a wait now runs to its timeout.
    loop = asyncio.get_running_loop()
    started = loop.time()
    await first.wait(0.05)
    assert loop.time() - started >= 0.04
    await wakeup.close()


def test_the_listener_dsn_drops_the_sqlalchemy_driver() -> None:
    assert asyncpg_dsn("postgresql+asyncpg://u:p@h:5433/db") == "postgresql://u:p@h:5433/db"
