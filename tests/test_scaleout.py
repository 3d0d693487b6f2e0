"""Several `hambastegi worker` processes sharing one delivery queue
(FOR UPDATE SKIP LOCKED on PostgreSQL): every inbox sent once, none lost when
a worker is killed mid fan-out, and its lanes back within the short lease."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import select

from node.core.settings import Settings
from node.federation import keys, publishing
from node.federation.runtime import Node
from node.groups import operations
from node.storage.models import Fanout, HostState
from tests.conftest import DatabaseFactory, wait_for
from tests.fediverse import SinkFarm

# Lanes one worker holds at once, and its lease: short, as the kill test measures.
CONCURRENCY = 5
LEASE_SECONDS = 3.0
PER_LANE = 4  # DeliveryWorker's default sends at once per lane


class Queue:
    def __init__(self, node: Node, env: dict[str, str]) -> None:
        self.node = node
        self.env = env

    async def lanes(self) -> list[HostState]:
        async with self.node.db.read() as session:
            return list((await session.exec(select(HostState))).all())

    async def recorded(self, total_per_host: int) -> int:
        """Deliveries the lanes have recorded: a lane past the fan-out has all of
        its host's, one at it has those in ``done``."""
        top = await self.head()
        return sum(total_per_host if lane.cursor >= top else len(lane.done or ())
                   for lane in await self.lanes())

    async def head(self) -> int:
        async with self.node.db.read() as session:
            return max([i for i in (await session.exec(select(Fanout.id))).all() if i] or [0])

    async def start_worker(self) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "node.cli.main", "worker", env=self.env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)


@pytest.fixture
async def queue(tmp_path: Path, databases: DatabaseFactory) -> AsyncIterator[Queue]:
    url = await databases.new()
    env = {**os.environ, "HAMBASTEGI_DATABASE_URL": url,
           "HAMBASTEGI_DATA_DIR": str(tmp_path / "data"),
           "HAMBASTEGI_BASE_URL": "http://127.0.0.1:9",
           "HAMBASTEGI_ALLOW_PRIVATE_NETWORKS": "1",
           "HAMBASTEGI_WORKER_POLL_SECONDS": "0.1",
           "HAMBASTEGI_DELIVERY_CONCURRENCY": str(CONCURRENCY),
           "HAMBASTEGI_DELIVERY_BATCH": "100",
           "HAMBASTEGI_DELIVERY_LEASE_SECONDS": str(LEASE_SECONDS)}
    node = Node(Settings.load(environ=env))
    await node.start()
    await operations.create_group(node, "koeln", display_name="Köln", language="de")
    yield Queue(node, env)
    await node.close()


async def publish_to(queue: Queue, inboxes: list[str]) -> None:
    from node.federation.local_actors import get_group

    async with queue.node.db.write() as session:
        actor = await get_group(session, "koeln")
        assert actor is not None
        await publishing.record_activity(
            session, actor, queue.node.urls, activity_type="Create",
            obj={"id": queue.node.urls.object("x"), "type": "Note", "content": "hi"},
            to=["https://www.w3.org/ns/activitystreams#Public"], inboxes=inboxes)


async def group_key(queue: Queue) -> keys.PublicKey:
    from node.federation.local_actors import get_group

    async with queue.node.db.read() as session:
        actor = await get_group(session, "koeln")
    assert actor is not None
    return keys.load_public_pem(actor.rsa_public_pem)


async def test_two_workers_send_every_inbox_exactly_once(queue: Queue) -> None:
    # Slow hosts (a lane takes a few seconds): the second worker has started
    # before the first could take every lane.
    sinks = SinkFarm(10, delay=0.2, verify_every=25, public_key=await group_key(queue))
    await sinks.start()
    workers = [await queue.start_worker(), await queue.start_worker()]
    seen: set[str] = set()  # workers seen holding a lane
    try:
        inboxes = sinks.inboxes(per_host=50)
        await publish_to(queue, inboxes)

        async def all_sent() -> bool:
            lanes = await queue.lanes()
            seen.update(lane.worker_id for lane in lanes if lane.worker_id)
            return (await queue.recorded(50)) == len(inboxes)

        await wait_for(all_sent, timeout=90, interval=0.02, what="all 500 deliveries")
    finally:
        for worker in workers:
            worker.terminate()
            await worker.wait()
        await sinks.stop()
    assert len(sinks.received) == 500
    assert sinks.duplicates == 0
    assert sinks.verified >= 19 and sinks.problems == []
    # Ten lanes, at most five per worker: both took part.
    assert len(seen) == 2


async def test_worker_killed_mid_fan_out_loses_nothing_and_resumes_within_the_lease(
        queue: Queue) -> None:
    sinks = SinkFarm(5, delay=0.05)
    await sinks.start()
    first = await queue.start_worker()
    try:
        inboxes = sinks.inboxes(per_host=60)
        await publish_to(queue, inboxes)

        async def mid_fan_out() -> bool:
            return 0 < len(sinks.received) < len(inboxes) // 2

        await wait_for(mid_fan_out, interval=0.01, what="a fan-out under way")
        first.send_signal(signal.SIGKILL)
        await first.wait()
        received_at_kill = len(sinks.received)
        recorded_at_kill = await queue.recorded(60)
        assert recorded_at_kill < len(inboxes)
        # Sent but not recorded, and what was on the wire when the worker died.
        in_flight = max(received_at_kill - recorded_at_kill, 0) + CONCURRENCY * PER_LANE
        restarted = time.monotonic()
        second = await queue.start_worker()
        try:
            async def taken_over() -> bool:
                return (await queue.recorded(60)) > recorded_at_kill

            # The dead worker held every lane: nothing moves until its lease ends.
            await wait_for(taken_over, timeout=LEASE_SECONDS + 30, interval=0.02,
                           what="the dead worker's lanes taken over")
            takeover = time.monotonic() - restarted

            async def all_sent() -> bool:
                return (await queue.recorded(60)) == len(inboxes)

            await wait_for(all_sent, timeout=90, what="every inbox after the kill")
            elapsed = time.monotonic() - restarted
        finally:
            second.terminate()
            await second.wait()
    finally:
        if first.returncode is None:
            first.kill()
        await sinks.stop()
    assert len(sinks.received) == len(inboxes)  # nothing lost
    # Only what the killed worker had in flight or had not recorded went twice.
    assert sinks.duplicates <= in_flight
    assert sinks.duplicates <= len(inboxes) - recorded_at_kill
    # The dead worker's lanes came back when its short lease ended, not minutes
    # later (the bound leaves room for starting a process on a busy machine).
    print(f"\ntaken over {takeover:.1f} s, completed {elapsed:.1f} s after the restart "
          f"(lease {LEASE_SECONDS} s)")
    assert takeover < LEASE_SECONDS + 10
