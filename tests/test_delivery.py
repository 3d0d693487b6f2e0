"""The delivery queue against real databases and real HTTP.

Every test runs on a fresh SQLite file, and again on a fresh PostgreSQL
database when HAMBASTEGI_TEST_DATABASE_URL is set. Inboxes are aiohttp sink
servers on loopback (one host each, by port) that verify every signature,
count what they receive per (activity, inbox) and answer as scripted.
"""

from __future__ import annotations

import asyncio
import functools
import json
import socket
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from node.core.urls import Urls
from node.federation import keys
from node.federation.delivery import (
    Claimed,
    DeliveryWorker,
    Outcome,
    claim,
    complete,
    enqueue,
    inbox_host,
)
from node.federation.fetch import GuardedClient, allow_all_policy, public_address_policy
from node.federation.retry import BREAKER_THRESHOLD, MIN_DELAY
from node.storage.db import Database, utcnow
from node.storage.models import Activity, Delivery, HostState, LocalActor
from tests.conftest import wait_for
from tests.fediverse import (
    InboxSink,
    RawRequest,
    RawServer,
    Respond,
    accept,
    signature_problem,
    signature_scheme,
)

BASE_URL = "http://127.0.0.1:9"  # our node's URLs appear only in key ids here
USERNAME = "koeln"


# --- databases ------------------------------------------------------------------------------------


# The ``db`` fixture comes from conftest.py: SQLite, or a fresh PostgreSQL
# database when HAMBASTEGI_TEST_DATABASE_URL is set (.ci/run runs both).


# --- the sending side: an actor with real keys, activities ----------------------------------------


@functools.cache
def actor_keys() -> tuple[str, str, str, str]:
    """One RSA and one Ed25519 key pair for the whole module (RSA keygen is slow)."""
    rsa = keys.generate_rsa()
    ed = keys.generate_ed25519()
    return (keys.private_to_pem(rsa), keys.public_to_pem(rsa.public_key()),
            keys.private_to_pem(ed), keys.ed25519_to_multibase(ed.public_key()))


@dataclass
class Sender:
    db: Database
    urls: Urls
    actor_id: int
    public_key: keys.PublicKey

    async def activity(self) -> tuple[int, str]:
        """A new Create activity; returns its row id and its ActivityPub id."""
        activity_uuid = uuid.uuid4().hex
        activity_uri = self.urls.activity(activity_uuid)
        body = json.dumps({"@context": "https://www.w3.org/ns/activitystreams",
                           "id": activity_uri, "type": "Create",
                           "actor": self.urls.actor(USERNAME),
                           "object": {"type": "Note", "content": "Solidarität!"}}).encode()
        async with self.db.write() as session:
            activity = Activity(uuid=activity_uuid, local_actor_id=self.actor_id,
                                activity_type="Create", body=body)
            session.add(activity)
            await session.flush()
            assert activity.id is not None
            return activity.id, activity_uri

    async def publish(self, inboxes: list[str]) -> tuple[int, str]:
        activity_id, activity_uri = await self.activity()
        async with self.db.write() as session:
            await enqueue(session, activity_id, inboxes)
        return activity_id, activity_uri


@pytest.fixture
async def sender(db: Database) -> Sender:
    rsa_private, rsa_public, ed_private, ed_multibase = actor_keys()
    async with db.write() as session:
        actor = LocalActor(username=USERNAME, display_name="Köln", rsa_private_pem=rsa_private,
                           rsa_public_pem=rsa_public, ed25519_private_pem=ed_private,
                           ed25519_public_multibase=ed_multibase)
        session.add(actor)
        await session.flush()
        assert actor.id is not None
        actor_id = actor.id
    return Sender(db, Urls(BASE_URL), actor_id, keys.load_public_pem(rsa_public))


# --- the receiving side: sink inboxes (tests/fediverse.py) ----------------------------------------


@pytest.fixture
async def sinks(sender: Sender) -> AsyncIterator[Callable[..., Awaitable[InboxSink]]]:
    started: list[InboxSink] = []

    async def make(respond: Respond = accept, delay: float = 0.0) -> InboxSink:
        sink = InboxSink(public_key=sender.public_key, key_id=sender.urls.key_id(USERNAME),
                    respond=respond, delay=delay)
        await sink.start()
        started.append(sink)
        return sink

    yield make
    for sink in started:
        await sink.stop()


# --- workers --------------------------------------------------------------------------------------


@pytest.fixture
async def client() -> AsyncIterator[GuardedClient]:
    async with GuardedClient(policy=allow_all_policy, user_agent="hambastegi-test") as guarded:
        yield guarded


@pytest.fixture
def workers(db: Database, client: GuardedClient,
            sender: Sender) -> Iterator[Callable[..., DeliveryWorker]]:
    made: list[DeliveryWorker] = []

    def make(**kwargs: Any) -> DeliveryWorker:
        kwargs.setdefault("poll_seconds", 0.05)
        worker = DeliveryWorker(db, kwargs.pop("client", client), sender.urls, **kwargs)
        made.append(worker)
        return worker

    yield make
    for worker in made:
        worker.close()


# --- reading the queue ----------------------------------------------------------------------------


async def deliveries(db: Database, activity_id: int | None = None) -> list[Delivery]:
    query = select(Delivery).order_by(col(Delivery.id))
    if activity_id is not None:
        query = query.where(Delivery.activity_id == activity_id)
    async with db.read() as session:
        return list((await session.exec(query)).all())


async def host_state(db: Database, host: str) -> HostState | None:
    async with db.read() as session:
        return await session.get(HostState, host)


async def wait_until(check: Callable[[], Awaitable[bool]], *, timeout: float = 30.0,
                     what: str = "condition") -> None:
    await wait_for(check, timeout=timeout, what=what)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- enqueue --------------------------------------------------------------------------------------


async def test_enqueue_dedupes_and_skips_undeliverable(db: Database, sender: Sender) -> None:
    activity_id, _ = await sender.activity()
    first = ["https://a.example/inbox", "https://B.example/users/x/inbox",
             "https://a.example/inbox", "https://b.example/users/x/inbox"]
    junk = ["ftp://a.example/inbox", "not a url", "https:///no-host",
            "https://user:secret@c.example/inbox", "https://[::1/inbox",
            "https://a.example/" + "x" * 3000]
    async with db.write() as session:
        assert await enqueue(session, activity_id, first + junk) == 3
    async with db.write() as session:
        again = ["https://a.example/inbox", "https://d.example:8443/inbox"]
        assert await enqueue(session, activity_id, again) == 1
    async with db.write() as session:
        assert await enqueue(session, activity_id, []) == 0
    rows = await deliveries(db)
    assert sorted(r.inbox_url for r in rows) == [
        "https://B.example/users/x/inbox", "https://a.example/inbox",
        "https://b.example/users/x/inbox", "https://d.example:8443/inbox"]
    assert {r.inbox_url: r.host for r in rows}["https://B.example/users/x/inbox"] == "b.example"
    assert {r.host for r in rows} == {"a.example", "b.example", "d.example:8443"}
    assert all(r.state == "pending" and r.attempts == 0 for r in rows)
    assert all(r.next_attempt_at.tzinfo is not None for r in rows)
    # Another activity to the same inbox is another row.
    other_id, _ = await sender.activity()
    async with db.write() as session:
        assert await enqueue(session, other_id, ["https://a.example/inbox"]) == 1


def test_inbox_host() -> None:
    assert inbox_host("https://Social.Example:443/inbox") == "social.example:443"
    assert inbox_host("http://127.0.0.1:8080/x") == "127.0.0.1:8080"
    assert inbox_host("mailto:a@b.example") is None
    assert inbox_host("https://" + "a" * 300 + ".example/inbox") is None


async def test_enqueue_20000_inboxes(db: Database, sender: Sender) -> None:
    activity_id, _ = await sender.activity()
    inboxes = [f"https://host{i % 2000}.example/users/{i}/inbox" for i in range(20_000)]
    started = time.perf_counter()
    async with db.write() as session:
        inserted = await enqueue(session, activity_id, inboxes)
    seconds = time.perf_counter() - started
    print(f"\nenqueue of 20,000 inboxes on {db.write_engine.dialect.name}: {seconds:.2f} s")
    assert inserted == 20_000
    started = time.perf_counter()
    async with db.write() as session:
        assert await enqueue(session, activity_id, inboxes) == 0
    print(f"re-enqueue of the same 20,000 (all skipped): {time.perf_counter() - started:.2f} s")


# --- sending --------------------------------------------------------------------------------------


async def test_hundred_rows_to_ten_hosts_delivered_once(
        db: Database, sender: Sender, sinks: Callable[..., Awaitable[InboxSink]],
        workers: Callable[..., DeliveryWorker]) -> None:
    hosts = [await sinks() for _ in range(10)]
    inboxes = [sink.inbox(i) for sink in hosts for i in range(10)]
    activity_id, activity_uri = await sender.publish(inboxes)
    worker = workers(batch=30, concurrency=8)
    assert await worker.run_once() == 100
    for sink in hosts:
        assert sink.problems == []
        assert len(sink.requests) == 10
        assert sorted(sink.received.values()) == [1] * 10
        assert {a for a, _ in sink.received} == {activity_uri}
        assert sink.schemes == ["cavage"] * 10
    rows = await deliveries(db, activity_id)
    assert len(rows) == 100
    for row in rows:
        assert (row.state, row.attempts, row.last_status) == ("sent", 1, 202)
        assert row.finished_at is not None and row.lease_until is None
        assert row.worker_id == worker.worker_id
    assert worker.counters == {"sent": 100, "retried": 0, "failed": 0, "postponed": 0,
                               "lost_leases": 0}
    # Healthy cavage hosts need no host_state rows at all.
    async with db.read() as session:
        assert (await session.exec(select(HostState))).all() == []
    # Nothing is due any more.
    assert await worker.run_once() == 0


@pytest.mark.parametrize("status", [404, 410])
async def test_gone_inboxes_fail_without_retry(
        status: int, db: Database, sender: Sender, sinks: Callable[..., Awaitable[InboxSink]],
        workers: Callable[..., DeliveryWorker]) -> None:
    sink = await sinks(lambda scheme, nth: (status, {}))
    activity_id, _ = await sender.publish([sink.inbox(1), sink.inbox(2)])
    worker = workers()
    assert await worker.run_once() == 0
    assert len(sink.requests) == 2  # no double knock for a 404/410
    for row in await deliveries(db, activity_id):
        assert (row.state, row.attempts, row.last_status) == ("failed", 1, status)
        assert row.last_error == f"http_{status}" and row.finished_at is not None
    assert worker.failed == 2 and worker.retried == 0
    assert await worker.run_once() == 0
    assert len(sink.requests) == 2
    # The host answered: it is not counted as failing.
    state = await host_state(db, sink.authority)
    assert state is None or state.consecutive_failures == 0


async def test_server_error_is_retried_later(
        db: Database, sender: Sender, sinks: Callable[..., Awaitable[InboxSink]],
        workers: Callable[..., DeliveryWorker]) -> None:
    sink = await sinks(lambda scheme, nth: (500, {}))
    activity_id, _ = await sender.publish([sink.inbox()])
    worker = workers()
    before = utcnow()
    assert await worker.run_once() == 0
    after = utcnow()
    [row] = await deliveries(db, activity_id)
    assert (row.state, row.attempts, row.last_status, row.last_error) == (
        "pending", 1, 500, "http_500")
    assert before + MIN_DELAY <= row.next_attempt_at <= after + timedelta(minutes=1)
    assert row.lease_until is None and row.finished_at is None
    assert len(sink.requests) == 1
    assert worker.retried == 1
    state = await host_state(db, sink.authority)
    assert state is not None and state.consecutive_failures == 1
    assert state.circuit_open_until is None
    # Not due again yet.
    assert await worker.run_once() == 0
    assert len(sink.requests) == 1


async def test_unreachable_host_is_retried(
        db: Database, sender: Sender, workers: Callable[..., DeliveryWorker]) -> None:
    inbox = f"http://127.0.0.1:{closed_port()}/inbox"
    activity_id, _ = await sender.publish([inbox])
    worker = workers()
    assert await worker.run_once() == 0
    [row] = await deliveries(db, activity_id)
    assert (row.state, row.attempts, row.last_status, row.last_error) == (
        "pending", 1, None, "connect_error")
    state = await host_state(db, row.host)
    assert state is not None and state.consecutive_failures == 1


@pytest.mark.parametrize(("status", "retry_after", "wait"), [
    (429, "3600", timedelta(hours=1)),
    (503, "HTTP-DATE", timedelta(hours=3)),
    (429, "999999999", timedelta(days=2)),  # capped
])
async def test_retry_after_is_honoured(
        status: int, retry_after: str, wait: timedelta, db: Database, sender: Sender,
        sinks: Callable[..., Awaitable[InboxSink]], workers: Callable[..., DeliveryWorker]) -> None:
    if retry_after == "HTTP-DATE":
        moment = datetime.now(UTC) + wait
        retry_after = moment.strftime("%a, %d %b %Y %H:%M:%S GMT")
    sink = await sinks(lambda scheme, nth: (status, {"Retry-After": retry_after}))
    activity_id, _ = await sender.publish([sink.inbox()])
    now = utcnow()
    assert await workers().run_once() == 0
    [row] = await deliveries(db, activity_id)
    assert (row.state, row.attempts, row.last_status) == ("pending", 1, status)
    # Far beyond the first backoff (at most a minute): the receiver's wish.
    assert abs(row.next_attempt_at - (now + wait)) < timedelta(seconds=5)


async def test_breaker_opens_and_postpones_only_that_host(
        db: Database, sender: Sender, sinks: Callable[..., Awaitable[InboxSink]],
        workers: Callable[..., DeliveryWorker]) -> None:
    answer = {"status": 503}
    dead = await sinks(lambda scheme, nth: (answer["status"], {}))
    healthy = await sinks()
    worker = workers()
    # One failed round per activity: each is one failure observation of the host.
    for round_ in range(1, BREAKER_THRESHOLD + 1):
        await sender.publish([dead.inbox(), healthy.inbox()])
        assert await worker.run_once() == 1
        state = await host_state(db, dead.authority)
        assert state is not None and state.consecutive_failures == round_
        if round_ < BREAKER_THRESHOLD:
            assert state.circuit_open_until is None
    assert state is not None and state.circuit_open_until is not None
    opened = state.circuit_open_until
    assert timedelta(seconds=50) < opened - utcnow() <= timedelta(minutes=1)
    assert len(dead.requests) == BREAKER_THRESHOLD

    # The circuit is open: the dead host's new row waits, no attempt is counted;
    # the healthy host's row goes out.
    activity_id, _ = await sender.publish([dead.inbox(), healthy.inbox()])
    assert await worker.run_once() == 1
    assert len(dead.requests) == BREAKER_THRESHOLD
    assert len(healthy.requests) == BREAKER_THRESHOLD + 1
    rows = {r.host: r for r in await deliveries(db, activity_id)}
    waiting = rows[dead.authority]
    assert (waiting.state, waiting.attempts, waiting.last_status) == ("pending", 0, None)
    assert waiting.next_attempt_at == opened
    assert waiting.lease_until is None
    assert rows[healthy.authority].state == "sent"
    assert worker.postponed == 1
    # Earlier rows, each with its one failed attempt, were not touched.
    failed_before = [r for r in await deliveries(db) if r.host == dead.authority and r.attempts]
    assert len(failed_before) == BREAKER_THRESHOLD
    assert all(r.state == "pending" and r.attempts == 1 for r in failed_before)

    # The host recovers and the open period ends: everything goes, the circuit closes.
    answer["status"] = 202
    past = utcnow() - timedelta(seconds=1)
    async with db.write() as session:
        await session.exec(update(HostState).where(col(HostState.host) == dead.authority)
                           .values(circuit_open_until=past))
        await session.exec(update(Delivery).where(col(Delivery.host) == dead.authority)
                           .values(next_attempt_at=past))
    assert await worker.run_once() == BREAKER_THRESHOLD + 1
    assert sorted(dead.received.values()) == [1] * (BREAKER_THRESHOLD + 1)
    state = await host_state(db, dead.authority)
    assert state is not None
    assert (state.consecutive_failures, state.circuit_open_until) == (0, None)
    assert state.last_success_at is not None
    assert dead.problems == [] and healthy.problems == []


async def test_expired_lease_is_reclaimed_and_the_late_outcome_ignored(
        db: Database, sender: Sender, sinks: Callable[..., Awaitable[InboxSink]],
        workers: Callable[..., DeliveryWorker]) -> None:
    sink = await sinks()
    activity_id, _ = await sender.publish([sink.inbox(i) for i in range(3)])
    # A worker claims and dies: its lease is already over.
    taken = await claim(db, "dead", 10, timedelta(minutes=-1))
    assert len(taken) == 3
    assert {r.state for r in await deliveries(db)} == {"sending"}
    worker = workers(worker_id="alive")
    assert await worker.run_once() == 3
    assert sorted(sink.received.values()) == [1, 1, 1]
    # The dead worker wakes up and reports a failure: nothing changes.
    late = await complete(db, "dead", [Outcome(c, "retry", 500, "http_500", host_ok=False)
                                       for c in taken])
    assert late == []
    for row in await deliveries(db, activity_id):
        assert (row.state, row.attempts, row.worker_id, row.last_status) == (
            "sent", 1, "alive", 202)
    assert await host_state(db, sink.authority) is None  # the late failure was not counted


async def test_live_lease_is_not_taken(
        db: Database, sender: Sender, sinks: Callable[..., Awaitable[InboxSink]],
        workers: Callable[..., DeliveryWorker]) -> None:
    sink = await sinks()
    await sender.publish([sink.inbox(i) for i in range(3)])
    held = await claim(db, "holder", 10, timedelta(minutes=10))
    assert len(held) == 3
    assert await workers().run_once() == 0
    assert len(sink.requests) == 0
    assert {(r.state, r.worker_id) for r in await deliveries(db)} == {("sending", "holder")}
    # The holder can still complete its rows.
    recorded = await complete(db, "holder", [Outcome(c, "sent", 202, host_ok=True)
                                             for c in held])
    assert [r.state for r in recorded] == ["sent"] * 3


async def test_slow_sends_keep_their_lease(
        db: Database, sender: Sender, sinks: Callable[..., Awaitable[InboxSink]],
        workers: Callable[..., DeliveryWorker]) -> None:
    """A batch that takes longer than the lease renews it: no one else sends it."""
    sink = await sinks(delay=2.0)
    await sender.publish([sink.inbox(i) for i in range(4)])
    worker = workers(lease=timedelta(seconds=0.9))
    task = asyncio.create_task(worker.run_once())

    async def in_flight() -> bool:
        return sink.in_flight == 4

    await wait_until(in_flight, what="four requests in flight")
    lease_ends = utcnow() + timedelta(seconds=0.9)
    cpu_before = time.process_time()
    stolen: list[Claimed] = []

    async def past_the_first_lease() -> bool:
        stolen.extend(await claim(db, "thief", 10, timedelta(minutes=1)))
        return utcnow() > lease_ends + timedelta(seconds=0.5)

    # A thief keeps trying until well past the original lease.
    await wait_for(past_the_first_lease, timeout=10, interval=0.25,
                   what="the first lease long over")
    # Waiting on slow requests is idle: no polling loop spinning meanwhile.
    assert time.process_time() - cpu_before < 0.75
    assert await task == 4
    assert stolen == []
    assert sorted(sink.received.values()) == [1] * 4
    assert worker.lost_leases == 0


async def test_double_knock_remembers_the_scheme(
        db: Database, sender: Sender, sinks: Callable[..., Awaitable[InboxSink]],
        workers: Callable[..., DeliveryWorker]) -> None:
    # Refuses draft-cavage, accepts RFC 9421.
    sink = await sinks(lambda scheme, nth: (401, {}) if scheme == "cavage" else (202, {}))
    activity_id, _ = await sender.publish([sink.inbox()])
    worker = workers()
    assert await worker.run_once() == 1
    assert sink.schemes == ["cavage", "rfc9421"]
    assert sink.problems == []
    [row] = await deliveries(db, activity_id)
    assert (row.state, row.attempts, row.last_status) == ("sent", 1, 202)
    state = await host_state(db, sink.authority)
    assert state is not None and state.signature_scheme == "rfc9421"
    # The next delivery starts with the scheme that worked: one request.
    await sender.publish([sink.inbox()])
    assert await worker.run_once() == 1
    assert sink.schemes == ["cavage", "rfc9421", "rfc9421"]


async def test_first_knock_refused_then_accepted(
        db: Database, sender: Sender, sinks: Callable[..., Awaitable[InboxSink]],
        workers: Callable[..., DeliveryWorker]) -> None:
    # 401 once (whatever the scheme), then OK: the knock with the other scheme wins.
    sink = await sinks(lambda scheme, nth: (401, {}) if nth == 0 else (202, {}))
    await sender.publish([sink.inbox()])
    assert await workers().run_once() == 1
    assert sink.schemes == ["cavage", "rfc9421"]
    state = await host_state(db, sink.authority)
    assert state is not None and state.signature_scheme == "rfc9421"


async def test_both_schemes_refused_is_retried(
        db: Database, sender: Sender, sinks: Callable[..., Awaitable[InboxSink]],
        workers: Callable[..., DeliveryWorker]) -> None:
    sink = await sinks(lambda scheme, nth: (401, {}))
    activity_id, _ = await sender.publish([sink.inbox()])
    assert await workers().run_once() == 0
    assert sink.schemes == ["cavage", "rfc9421"]  # one knock each, no more
    [row] = await deliveries(db, activity_id)
    assert (row.state, row.attempts, row.last_status) == ("pending", 1, 401)
    # An answering host is not a failing host, and no scheme is learnt.
    state = await host_state(db, sink.authority)
    assert state is None or (state.consecutive_failures, state.signature_scheme) == (0, None)


async def test_refused_address_fails_at_once(
        db: Database, sender: Sender, sinks: Callable[..., Awaitable[InboxSink]],
        workers: Callable[..., DeliveryWorker]) -> None:
    sink = await sinks()
    activity_id, _ = await sender.publish([sink.inbox()])
    async with GuardedClient(policy=public_address_policy, user_agent="test") as guarded:
        worker = workers(client=guarded)
        assert await worker.run_once() == 0
    [row] = await deliveries(db, activity_id)
    assert (row.state, row.last_error) == ("failed", "forbidden_address")
    assert len(sink.requests) == 0
    assert await host_state(db, sink.authority) is None


async def test_unusable_key_fails_without_sending(
        db: Database, sender: Sender, sinks: Callable[..., Awaitable[InboxSink]],
        workers: Callable[..., DeliveryWorker]) -> None:
    _, _, ed_private, _ = actor_keys()
    async with db.write() as session:
        actor = await session.get(LocalActor, sender.actor_id)
        assert actor is not None
        actor.rsa_private_pem = ed_private  # not an RSA key: cannot sign for Mastodon
        session.add(actor)
    sink = await sinks()
    activity_id, _ = await sender.publish([sink.inbox()])
    assert await workers().run_once() == 0
    [row] = await deliveries(db, activity_id)
    assert (row.state, row.last_error) == ("failed", "bad_key")
    assert len(sink.requests) == 0


async def test_wake_delivers_without_waiting_for_the_poll(
        db: Database, sender: Sender, sinks: Callable[..., Awaitable[InboxSink]],
        workers: Callable[..., DeliveryWorker]) -> None:
    sink = await sinks()
    worker = workers(poll_seconds=600)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:

        async def idle() -> bool:
            return worker.idle

        await wait_until(idle, what="the worker waiting on an empty queue")
        await sender.publish([sink.inbox()])
        started = time.monotonic()
        worker.wake()

        async def delivered() -> bool:
            return worker.sent == 1

        await wait_until(delivered, timeout=10, what="the woken delivery")
        assert time.monotonic() - started < 5
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)
    assert len(sink.requests) == 1


async def test_two_workers_send_every_row_exactly_once(
        db: Database, sender: Sender, sinks: Callable[..., Awaitable[InboxSink]],
        workers: Callable[..., DeliveryWorker]) -> None:
    hosts = [await sinks(delay=0.01) for _ in range(10)]
    inboxes = [sink.inbox(i) for sink in hosts for i in range(50)]
    first = workers(batch=40, concurrency=16, worker_id="one")
    second = workers(batch=40, concurrency=16, worker_id="two")
    stop = asyncio.Event()
    tasks = [asyncio.create_task(w.run(stop)) for w in (first, second)]
    try:
        activity_id, activity_uri = await sender.publish(inboxes)
        for worker in (first, second):
            worker.wake()

        async def all_sent() -> bool:
            return first.sent + second.sent == 500

        await wait_until(all_sent, timeout=60, what="500 deliveries")
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=20)
    received: Counter[tuple[str, str]] = Counter()
    for sink in hosts:
        assert sink.problems == []
        received.update({(f"{sink.authority}{path}", activity): n
                         for (activity, path), n in sink.received.items()})
    assert len(received) == 500
    assert set(received.values()) == {1}  # every (activity, inbox) exactly once
    assert first.sent > 0 and second.sent > 0  # both took part
    assert first.lost_leases == second.lost_leases == 0
    rows = await deliveries(db, activity_id)
    assert {r.state for r in rows} == {"sent"}
    assert {r.worker_id for r in rows} == {"one", "two"}
    assert {a for _, a in received} == {activity_uri}


# --- what is signed is what goes on the wire ------------------------------------------------------


@dataclass
class WireRequest:
    target: str  # the request-target exactly as it arrived on the socket
    scheme: str
    problem: str | None  # None: the signature verifies against ``target``


@dataclass
class WireCheck:
    """An inbox (on a RawServer, so no framework normalises the path first) that
    verifies each signature against the request-target exactly as it arrived, as a
    receiver that reconstructs the URI from its raw request-target does. Answers 202
    if it verifies, else 401."""

    public_key: keys.PublicKey
    requests: list[WireRequest] = field(default_factory=list)

    def __call__(self, server: RawServer, request: RawRequest) -> bytes:
        problem = signature_problem(request.method, server.base + request.target,
                                    request.headers, request.body, self.public_key)
        self.requests.append(WireRequest(request.target, signature_scheme(request.headers),
                                         problem))
        status = b"202 Accepted" if problem is None else b"401 Unauthorized"
        return b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\n\r\n"


# Inbox paths as followers' servers publish them, and what the wire must carry.
WIRE_PATHS = [
    "/users/%7Ealice/inbox",  # an escaped unreserved character, which yarl decodes
    "/inbox/a%2Fb",  # an escaped slash, which must stay escaped
    "/users/ä/inbox",  # a raw non-ASCII path, which must be escaped on the wire
    "/users/%c3%a4/inbox",  # lower-case escapes
    "/inbox?x=%7E&y=a%20b",  # a query with escapes
    "/inbox?to=%2Fusers%2Fbob&n=1",  # escaped slashes in the query
]


@pytest.mark.parametrize("scheme", ["cavage", "rfc9421"])
async def test_signed_target_is_the_target_on_the_wire(
        db: Database, sender: Sender, workers: Callable[..., DeliveryWorker],
        scheme: str) -> None:
    check = WireCheck(sender.public_key)
    async with RawServer(check) as sink:
        host = f"127.0.0.1:{sink.port}"
        if scheme == "rfc9421":
            async with db.write() as session:
                session.add(HostState(host=host, consecutive_failures=0,
                                      signature_scheme="rfc9421"))
        inboxes = [f"http://{host}{path}" for path in WIRE_PATHS]
        activity_id, _ = await sender.publish(inboxes)
        await workers(signing_threads=0).run_once()
        # Every inbox was reached once, and its signature verified the first
        # time against the request-target as it arrived.
        assert [(r.scheme, r.problem) for r in check.requests] == [(scheme, None)] * len(inboxes)
        # Encoded inbox URLs went byte for byte as published; the raw one escaped.
        assert sorted(r.target for r in check.requests) == sorted(
            "/users/%C3%A4/inbox" if path == "/users/ä/inbox" else path for path in WIRE_PATHS)
        assert [r.state for r in await deliveries(db, activity_id)] == ["sent"] * len(inboxes)
