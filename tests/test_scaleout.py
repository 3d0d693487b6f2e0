"""Several `hambastegi worker` processes sharing one delivery queue
(FOR UPDATE SKIP LOCKED on PostgreSQL): every row sent once, none lost when
a worker is killed mid-batch."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlmodel import col, select

from node.core.settings import Settings
from node.federation import keys, publishing
from node.federation.runtime import Node
from node.groups import operations
from node.storage.models import Delivery
from tests.conftest import DatabaseFactory, wait_for
from tests.fediverse import SinkFarm


class Queue:
    def __init__(self, node: Node, env: dict[str, str]) -> None:
        self.node = node
        self.env = env

    async def counts(self) -> dict[str, int]:
        async with self.node.db.read() as session:
            rows = await session.exec(select(Delivery.state, func.count())  # type: ignore[call-overload]
                                      .group_by(Delivery.state))
            return dict(rows.all())

    async def workers_used(self) -> set[str]:
        async with self.node.db.read() as session:
            rows = await session.exec(select(Delivery.worker_id).distinct()
                                      .where(col(Delivery.worker_id).is_not(None)))
            return {w for w in rows.all() if w}

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
           "HAMBASTEGI_DELIVERY_CONCURRENCY": "8",
           "HAMBASTEGI_DELIVERY_BATCH": "100",
           "HAMBASTEGI_DELIVERY_LEASE_SECONDS": "3"}
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


async def test_two_workers_send_every_row_exactly_once(queue: Queue) -> None:
    sinks = SinkFarm(10, delay=0.02, verify_every=25, public_key=await group_key(queue))
    await sinks.start()
    workers = [await queue.start_worker(), await queue.start_worker()]
    try:
        inboxes = sinks.inboxes(per_host=50)
        await publish_to(queue, inboxes)

        async def all_sent() -> bool:
            return (await queue.counts()).get("sent") == len(inboxes)

        await wait_for(all_sent, timeout=90, what="all 500 deliveries")
    finally:
        for worker in workers:
            worker.terminate()
            await worker.wait()
        await sinks.stop()
    assert len(sinks.received) == 500
    assert sinks.duplicates == 0
    assert sinks.verified >= 19 and sinks.problems == []
    assert len(await queue.workers_used()) == 2  # both took part


async def test_worker_killed_mid_batch_loses_nothing(queue: Queue) -> None:
    sinks = SinkFarm(5, delay=0.05)
    await sinks.start()
    first = await queue.start_worker()
    try:
        inboxes = sinks.inboxes(per_host=60)
        await publish_to(queue, inboxes)

        async def leased() -> bool:
            return (await queue.counts()).get("sending", 0) > 0

        await wait_for(leased, what="a leased batch")
        first.send_signal(signal.SIGKILL)
        await first.wait()
        in_flight = (await queue.counts()).get("sending", 0)
        assert in_flight > 0
        second = await queue.start_worker()
        try:
            async def all_sent() -> bool:
                return (await queue.counts()).get("sent") == len(inboxes)

            await wait_for(all_sent, timeout=90, what="every row after the kill")
        finally:
            second.terminate()
            await second.wait()
    finally:
        if first.returncode is None:
            first.kill()
        await sinks.stop()
    assert len(sinks.received) == len(inboxes)  # nothing lost
    # Only rows the killed worker had in flight may have gone twice.
    assert sinks.duplicates <= in_flight
