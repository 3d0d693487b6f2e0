"""The delivery worker under load (issue 24): no host stalled for a lease, no
delivery dropped, none sent twice. Real sinks on loopback, real signatures, a
real database (SQLite, and PostgreSQL with HAMBASTEGI_TEST_DATABASE_URL).

Every test samples the queue's invariants while the worker runs
(``DeliveryWorker.check_invariants``, docs/ARCHITECTURE.md §2 "Invariants").
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
from sqlmodel import select

from node.federation.delivery import DeliveryWorker
from node.federation.delivery import worker as worker_module
from node.federation.delivery.invariants import unexplained_failures
from node.storage.db import Database
from node.storage.models import DeliveryFailure, HostState, LocalActor
from tests import test_delivery
from tests.fediverse import InboxSink, SinkFarm
from tests.test_delivery import Sender, failures, head, lane, wait_until

# The delivery tests' fixtures: an actor with real keys, sinks, workers.
client = test_delivery.client
sender = test_delivery.sender
sinks = test_delivery.sinks
workers = test_delivery.workers


class Sampler:
    """Checks the worker's invariants over and over while it runs; keeps the worst."""

    def __init__(self, worker: DeliveryWorker) -> None:
        self.worker = worker
        self.orphaned = 0
        self.unexplained = 0
        self.checks = 0

    async def run(self) -> None:
        while True:
            found = await self.worker.check_invariants()
            self.orphaned = max(self.orphaned, found.orphaned_lanes)
            self.unexplained = max(self.unexplained, found.unexplained_failures)
            self.checks += 1
            await asyncio.sleep(0.01)  # a sampler's pace, not synchronisation


async def run_worker(worker: DeliveryWorker, done: Callable[[], Awaitable[bool]], *,
                     timeout: float, what: str) -> Sampler:
    """Run the worker until ``done``, sampling its invariants; then stop it."""
    sampler = Sampler(worker)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    sampling = asyncio.create_task(sampler.run())
    try:
        await wait_until(done, timeout=timeout, what=what)
    finally:
        sampling.cancel()
        stop.set()
        await asyncio.wait_for(task, timeout=20)
    final = await worker.check_invariants()
    sampler.orphaned = max(sampler.orphaned, final.orphaned_lanes)
    sampler.unexplained = max(sampler.unexplained, final.unexplained_failures)
    return sampler


async def test_a_lane_finished_and_claimed_again_in_one_step_is_walked_at_once(
        db: Database, sender: Sender, sinks: Callable[..., Awaitable[InboxSink]],
        workers: Callable[..., DeliveryWorker]) -> None:
    """Two hosts, entries queued alternately, a claim hook that yields to the
    event loop (as the node's domain-rule refresh does, reading the database):
    a walk ends during the hook, its release and the next claim share one
    transaction, and the lane comes back while its finished walk is still in
    the worker's task table. It must be walked again at once, not left
    ``sending`` to a worker that does not walk it until the lease runs out."""
    hosts = [await sinks(), await sinks()]
    for i in range(40):
        await sender.publish([hosts[i % 2].inbox()])

    async def refresh_rules() -> None:
        await asyncio.sleep(0.05)

    lease = timedelta(seconds=30)
    worker = workers(lease=lease, fanouts_per_claim=2, before_claim=refresh_rules)
    started = time.monotonic()
    finished: dict[str, float] = {}

    async def all_received() -> bool:
        for sink in hosts:
            if sum(sink.received.values()) == 20 and sink.authority not in finished:
                finished[sink.authority] = time.monotonic() - started
        return len(finished) == 2

    # A stalled lane waits out the 30 s lease: the deadline is well before it.
    sampler = await run_worker(worker, all_received, timeout=15, what="40 deliveries")
    assert sampler.checks > 0
    assert sampler.orphaned == 0
    assert max(finished.values()) < lease.total_seconds() / 6
    for sink in hosts:
        assert sorted(sink.received.values()) == [1] * 20
        assert (await lane(db, sink.authority)).cursor == await head(db)


async def test_more_lanes_in_hand_than_cached_activities_all_deliver(
        db: Database, sender: Sender, sinks: Callable[..., Awaitable[InboxSink]],
        workers: Callable[..., DeliveryWorker], monkeypatch: pytest.MonkeyPatch) -> None:
    """Each lane has its own activity and more lanes are claimed than the
    worker's cache of activities holds (shrunk from 256 to 4 here): every
    delivery is sent; none ends as ``activity_gone``."""
    monkeypatch.setattr(worker_module, "SOURCE_CACHE", 4)
    hosts = [await sinks() for _ in range(12)]
    published = [await sender.publish([sink.inbox()]) for sink in hosts]
    worker = workers(concurrency=12)

    async def all_received() -> bool:
        return all(sum(sink.received.values()) == 1 for sink in hosts)

    sampler = await run_worker(worker, all_received, timeout=20, what="12 deliveries")
    assert [f.error for f in await failures(db)] == []
    assert sampler.unexplained == 0 and sampler.orphaned == 0
    for sink, (_, uri) in zip(hosts, published, strict=True):
        assert [a for a, _ in sink.received] == [uri]


async def test_the_invariant_counts_deliveries_ended_for_no_remote_reason(
        db: Database, sender: Sender) -> None:
    """A remote's final answer, retries used up, a refused address are
    explained; an activity that still exists but was "gone" to the worker, an
    unusable key or an internal error are deliveries the node dropped."""
    activity_id, _ = await sender.publish(["https://a.example/inbox"])
    fanout_id = await head(db)
    reasons = [(410, "http_410"), (None, "attempts_used_up:http_503"),
               (None, "forbidden_address"), (None, "activity_gone"), (None, "bad_key"),
               (None, "internal_error")]
    async with db.write() as session:
        for status, error in reasons:
            session.add(DeliveryFailure(fanout_id=fanout_id, activity_id=activity_id,
                                        host="a.example", inbox_url="https://a.example/inbox",
                                        status=status, error=error))
    async with db.read() as session:
        assert await unexplained_failures(session) == 3


async def test_a_post_published_while_thousands_of_accepts_are_queued_reaches_each_inbox_once(
        db: Database, sender: Sender, workers: Callable[..., DeliveryWorker]) -> None:
    """2,000 Accepts (one explicit inbox each) to 100 hosts, 1,500 queued before
    and 500 while two workers send them (``serve`` and a ``hambastegi worker``
    share the queue), a post to 100 followers (one per host) published in the
    middle. One worker's claims are now and then held up for longer than the
    lease (its domain-rule refresh or the write lock behind the inbox's group
    commits): its walks keep sending meanwhile. Every inbox gets each activity
    exactly once, and nothing is lost."""
    farm = SinkFarm(100, public_key=sender.public_key, delay=0.002)
    await farm.start()
    lease = timedelta(seconds=4)
    try:
        for n, sink in enumerate(farm.sinks):
            await sender.follower(f"{sink.base}/users/f{n}", sink.inbox(f"f{n}"))
        for n in range(1_500):
            await sender.publish([farm.sinks[n % 100].inbox(f"a{n}")], activity_type="Accept")
        claims = 0

        async def held_up_now_and_then() -> None:
            nonlocal claims
            claims += 1
            async with db.read() as session:
                await session.exec(select(LocalActor.id).limit(1))
            if claims in (2, 6):
                await asyncio.sleep(lease.total_seconds() * 1.5)  # the held-up claim

        slow = workers(lease=lease, concurrency=16, worker_id="serve",
                       before_claim=held_up_now_and_then)
        other = workers(lease=lease, concurrency=16, worker_id="worker")
        expected = 1_500 + 100 + 500

        async def queue_more() -> None:
            for n in range(1_500, 2_000):
                await sender.publish([farm.sinks[n % 100].inbox(f"a{n}")],
                                     activity_type="Accept")
                if n == 1_600:
                    await sender.publish([], to_followers=True)
                slow.wake()
                other.wake()

        producer = asyncio.create_task(queue_more())
        samplers = [Sampler(slow), Sampler(other)]
        stop = asyncio.Event()
        tasks = [asyncio.create_task(w.run(stop)) for w in (slow, other)]
        sampling = [asyncio.create_task(s.run()) for s in samplers]

        async def all_received() -> bool:
            return producer.done() and len(farm.received) >= expected

        try:
            await wait_until(all_received, timeout=180, what=f"{expected} deliveries")
        except AssertionError as exc:
            async with db.read() as session:
                lanes = (await session.exec(select(HostState))).all()
            top = await head(db)
            behind = [(lane.state, lane.attempts, lane.last_error) for lane in lanes
                      if lane.cursor < top]
            raise AssertionError(
                f"{exc}: received {len(farm.received)}, head {top}, lanes behind "
                f"{len(behind)} {behind[:5]}; sent {slow.sent}/{other.sent}, "
                f"lost leases {slow.lost_leases}/{other.lost_leases}") from exc
        finally:
            for task in sampling:
                task.cancel()
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=20)
            await producer
    finally:
        await farm.stop()
    assert farm.problems == []
    assert len(farm.received) == expected
    assert farm.duplicates == 0
    assert max(s.orphaned for s in samplers) == 0
    assert max(s.unexplained for s in samplers) == 0
