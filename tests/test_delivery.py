"""The delivery queue (fan-out log, per-host lanes) against real databases
and real HTTP.

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
    DeliveryWorker,
    LaneClaim,
    claim_lanes,
    delivery_status,
    fan_out,
    flush,
    inbox_host,
    prepare_follower,
)
from node.federation.delivery.lanes import LaneWrite
from node.federation.fetch import GuardedClient, allow_all_policy, public_address_policy
from node.federation.retry import MIN_DELAY
from node.storage.db import Database, utcnow
from node.storage.models import (
    Activity,
    DeliveryFailure,
    Fanout,
    Follower,
    HostState,
    LocalActor,
)
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

    async def activity(self, activity_type: str = "Create") -> tuple[int, str]:
        """A new activity; returns its row id and its ActivityPub id."""
        activity_uuid = uuid.uuid4().hex
        activity_uri = self.urls.activity(activity_uuid)
        body = json.dumps({"@context": "https://www.w3.org/ns/activitystreams",
                           "id": activity_uri, "type": activity_type,
                           "actor": self.urls.actor(USERNAME),
                           "object": {"type": "Note", "content": "Solidarität!"}}).encode()
        async with self.db.write() as session:
            activity = Activity(uuid=activity_uuid, local_actor_id=self.actor_id,
                                activity_type=activity_type, body=body)
            session.add(activity)
            await session.flush()
            assert activity.id is not None
            return activity.id, activity_uri

    async def publish(self, inboxes: list[str], *, to_followers: bool = False,
                      activity_type: str = "Create") -> tuple[int, str]:
        activity_id, activity_uri = await self.activity(activity_type)
        async with self.db.write() as session:
            await fan_out(session, activity_id, inboxes=inboxes,
                          followers_of=self.actor_id if to_followers else None)
        return activity_id, activity_uri

    async def follower(self, actor_uri: str, inbox: str, shared_inbox: str | None = None,
                       *, state: str = "accepted") -> None:
        async with self.db.write() as session:
            follower = Follower(local_actor_id=self.actor_id, actor_uri=actor_uri, inbox=inbox,
                                shared_inbox=shared_inbox, follow_activity_id=actor_uri + "#f",
                                state=state)
            await prepare_follower(session, follower)


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


async def lane(db: Database, host: str) -> HostState:
    async with db.read() as session:
        state = await session.get(HostState, host)
    assert state is not None, host
    return state


async def failures(db: Database) -> list[DeliveryFailure]:
    async with db.read() as session:
        return list((await session.exec(
            select(DeliveryFailure).order_by(col(DeliveryFailure.id)))).all())


async def head(db: Database) -> int:
    async with db.read() as session:
        ids = (await session.exec(select(Fanout.id))).all()
    return max((i for i in ids if i is not None), default=0)


async def make_due(db: Database, host: str) -> None:
    """The lane's backoff is over (instead of waiting minutes for it)."""
    async with db.write() as session:
        await session.exec(update(HostState).where(col(HostState.host) == host)  # type: ignore[call-overload]
                           .values(next_attempt_at=utcnow() - timedelta(seconds=1)))


async def wait_until(check: Callable[[], Awaitable[bool]], *, timeout: float = 30.0,
                     what: str = "condition") -> None:
    await wait_for(check, timeout=timeout, what=what)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the fan-out log ------------------------------------------------------------------------------


async def test_fan_out_writes_one_row_dedupes_and_skips_undeliverable(
        db: Database, sender: Sender) -> None:
    activity_id, _ = await sender.activity()
    first = ["https://a.example/inbox", "https://B.example/users/x/inbox",
             "https://a.example/inbox", "https://b.example/users/x/inbox"]
    junk = ["ftp://a.example/inbox", "not a url", "https:///no-host",
            "https://user:secret@c.example/inbox", "https://[::1/inbox",
            "https://a.example/" + "x" * 3000]
    async with db.write() as session:
        fanout_id = await fan_out(session, activity_id, inboxes=first + junk)
    assert fanout_id is not None
    async with db.read() as session:
        [row] = (await session.exec(select(Fanout))).all()
        lanes = {s.host: s for s in (await session.exec(select(HostState))).all()}
    assert row.id == fanout_id and row.activity_id == activity_id
    assert row.followers_of is None
    assert row.inboxes == ["https://B.example/users/x/inbox", "https://a.example/inbox",
                           "https://b.example/users/x/inbox"]
    # Hosts of explicit inboxes got a lane starting just before this fan-out.
    assert set(lanes) == {"a.example", "b.example"}
    assert {(s.cursor, s.state, s.attempts) for s in lanes.values()} == {
        (fanout_id - 1, "idle", 0)}
    # Nothing to send to: no row at all.
    async with db.write() as session:
        assert await fan_out(session, activity_id, inboxes=junk) is None
        assert await fan_out(session, activity_id) is None
    assert await head(db) == fanout_id


def test_inbox_host() -> None:
    assert inbox_host("https://Social.Example:443/inbox") == "social.example:443"
    assert inbox_host("http://127.0.0.1:8080/x") == "127.0.0.1:8080"
    assert inbox_host("mailto:a@b.example") is None
    assert inbox_host("https://" + "a" * 300 + ".example/inbox") is None


async def test_a_post_to_20000_followers_writes_one_row(db: Database, sender: Sender) -> None:
    async with db.write() as session:
        for i in range(20_000):
            session.add(Follower(
                local_actor_id=sender.actor_id, actor_uri=f"https://h{i % 2000}.example/u/{i}",
                inbox=f"https://h{i % 2000}.example/u/{i}/inbox", state="accepted",
                follow_activity_id=f"https://h{i % 2000}.example/f/{i}",
                deliver_to=f"https://h{i % 2000}.example/u/{i}/inbox",
                host=f"h{i % 2000}.example"))
    activity_id, _ = await sender.activity()
    started = time.perf_counter()
    async with db.write() as session:
        fanout_id = await fan_out(session, activity_id, followers_of=sender.actor_id)
    seconds = time.perf_counter() - started
    print(f"\npublishing to 20,000 followers on {db.write_engine.dialect.name}: {seconds:.4f} s")
    async with db.read() as session:
        assert len((await session.exec(select(Fanout))).all()) == 1
        # No lane is written when publishing to followers: they exist since acceptance.
        assert (await session.exec(select(HostState))).all() == []
    assert fanout_id == 1


# --- sending --------------------------------------------------------------------------------------


async def test_hundred_inboxes_on_ten_hosts_delivered_once(
        db: Database, sender: Sender, sinks: Callable[..., Awaitable[InboxSink]],
        workers: Callable[..., DeliveryWorker]) -> None:
    hosts = [await sinks() for _ in range(10)]
    inboxes = [sink.inbox(i) for sink in hosts for i in range(10)]
    _, activity_uri = await sender.publish(inboxes)
    worker = workers(batch=3, concurrency=4)
    assert await worker.run_once() == 100
    for sink in hosts:
        assert sink.problems == []
        assert len(sink.requests) == 10
        assert sorted(sink.received.values()) == [1] * 10
        assert {a for a, _ in sink.received} == {activity_uri}
        assert sink.schemes == ["cavage"] * 10
        state = await lane(db, sink.authority)
        assert (state.cursor, state.state, state.attempts, state.done) == (
            await head(db), "idle", 0, None)
        assert state.lease_until is None and state.worker_id is None
    assert worker.counters == {"sent": 100, "retried": 0, "failed": 0, "lost_leases": 0}
    assert await failures(db) == []
    # Nothing is due any more.
    assert await worker.run_once() == 0


@pytest.mark.parametrize("status", [404, 410])
async def test_gone_inboxes_are_recorded_failed_and_the_lane_moves_on(
        status: int, db: Database, sender: Sender, sinks: Callable[..., Awaitable[InboxSink]],
        workers: Callable[..., DeliveryWorker]) -> None:
    sink = await sinks(lambda scheme, nth: (status, {}))
    activity_id, _ = await sender.publish([sink.inbox(1), sink.inbox(2)])
    worker = workers()
    assert await worker.run_once() == 0
    assert len(sink.requests) == 2  # no double knock for a 404/410
    rows = await failures(db)
    assert sorted(r.inbox_url for r in rows) == [sink.inbox(1), sink.inbox(2)]
    assert {(r.activity_id, r.host, r.status, r.error) for r in rows} == {
        (activity_id, sink.authority, status, f"http_{status}")}
    assert worker.failed == 2 and worker.retried == 0
    assert await worker.run_once() == 0
    assert len(sink.requests) == 2
    # The host answered: it is not counted as failing, and the lane went on.
    state = await lane(db, sink.authority)
    assert (state.cursor, state.attempts, state.consecutive_failures) == (await head(db), 0, 0)


async def test_server_error_holds_the_lane_and_is_retried_later(
        db: Database, sender: Sender, sinks: Callable[..., Awaitable[InboxSink]],
        workers: Callable[..., DeliveryWorker]) -> None:
    sink = await sinks(lambda scheme, nth: (500, {}))
    await sender.publish([sink.inbox()])
    fanout = await head(db)
    worker = workers()
    before = utcnow()
    assert await worker.run_once() == 0
    after = utcnow()
    state = await lane(db, sink.authority)
    assert (state.cursor, state.attempts, state.last_status, state.last_error) == (
        fanout - 1, 1, 500, "http_500")
    assert before + MIN_DELAY <= state.next_attempt_at <= after + timedelta(minutes=1)
    assert (state.state, state.lease_until) == ("idle", None)
    assert state.consecutive_failures == 1 and state.circuit_open_until == state.next_attempt_at
    assert len(sink.requests) == 1
    assert worker.retried == 1 and await failures(db) == []
    # Not due again yet, and a later post waits behind the first.
    await sender.publish([sink.inbox()])
    assert await worker.run_once() == 0
    assert len(sink.requests) == 1


async def test_unreachable_host_is_retried(
        db: Database, sender: Sender, workers: Callable[..., DeliveryWorker]) -> None:
    inbox = f"http://127.0.0.1:{closed_port()}/inbox"
    await sender.publish([inbox])
    worker = workers()
    assert await worker.run_once() == 0
    state = await lane(db, inbox_host(inbox) or "")
    assert (state.attempts, state.last_status, state.last_error) == (1, None, "connect_error")
    assert state.last_failure_at is not None


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
    await sender.publish([sink.inbox()])
    now = utcnow()
    assert await workers().run_once() == 0
    state = await lane(db, sink.authority)
    assert (state.attempts, state.last_status) == (1, status)
    # Far beyond the first backoff (at most a minute): the receiver's wish.
    assert abs(state.next_attempt_at - (now + wait)) < timedelta(seconds=5)


async def test_a_failing_host_holds_only_its_own_lane_and_recovers_in_order(
        db: Database, sender: Sender, sinks: Callable[..., Awaitable[InboxSink]],
        workers: Callable[..., DeliveryWorker]) -> None:
    answer = {"status": 503}
    dead = await sinks(lambda scheme, nth: (answer["status"], {}))
    healthy = await sinks()
    worker = workers()
    published = [await sender.publish([dead.inbox(), healthy.inbox()]) for _ in range(3)]
    assert await worker.run_once() == 3
    # One attempt at the head of the dead host's lane; the rest waits behind it.
    assert len(dead.requests) == 1 and len(healthy.requests) == 3
    state = await lane(db, dead.authority)
    assert (state.attempts, state.cursor) == (1, (await head(db)) - 3)
    statuses = {h.host: h for h in await delivery_status_of(db, published[1][0])}
    assert statuses[dead.authority].state == "retrying"
    assert statuses[dead.authority].next_attempt_at == state.next_attempt_at
    assert statuses[dead.authority].last_error == "http_503"
    assert statuses[healthy.authority].state == "delivered"
    # The host recovers and the backoff ends: everything goes, in publishing order.
    answer["status"] = 202
    await make_due(db, dead.authority)
    assert await worker.run_once() == 3
    assert list(dead.received) == [(uri, "/inbox/shared") for _, uri in published]
    state = await lane(db, dead.authority)
    assert (state.attempts, state.consecutive_failures, state.circuit_open_until) == (0, 0, None)
    assert state.last_success_at is not None and state.cursor == await head(db)
    assert dead.problems == [] and healthy.problems == []


async def delivery_status_of(db: Database, activity_id: int) -> list[Any]:
    async with db.read() as session:
        return await delivery_status(session, activity_id)


async def test_a_retry_does_not_resend_inboxes_that_already_got_it(
        db: Database, sender: Sender, sinks: Callable[..., Awaitable[InboxSink]],
        workers: Callable[..., DeliveryWorker]) -> None:
    failing = {"on": True}

    def respond(scheme: str, nth: int) -> tuple[int, dict[str, str]]:
        return (503, {}) if failing["on"] and nth == 0 else (202, {})

    sink = await sinks(respond)
    await sender.publish([sink.inbox(1), sink.inbox(2)])
    worker = workers(per_lane=1)
    assert await worker.run_once() == 1
    state = await lane(db, sink.authority)
    assert state.attempts == 1 and state.done == [sink.inbox(2)]
    failing["on"] = False
    await make_due(db, sink.authority)
    assert await worker.run_once() == 1
    assert sorted(sink.received.values()) == [1, 1]
    assert len(sink.requests) == 3
    state = await lane(db, sink.authority)
    assert (state.done, state.attempts, state.cursor) == (None, 0, await head(db))


async def test_expired_lease_is_reclaimed_and_the_late_progress_ignored(
        db: Database, sender: Sender, sinks: Callable[..., Awaitable[InboxSink]],
        workers: Callable[..., DeliveryWorker]) -> None:
    sink = await sinks()
    await sender.publish([sink.inbox(i) for i in range(3)])
    # A worker claims and dies: its lease is already over.
    taken, _ = await claim_lanes(db, "dead", 10, timedelta(minutes=-1))
    assert [c.host for c in taken] == [sink.authority]
    assert (await lane(db, sink.authority)).state == "sending"
    worker = workers(worker_id="alive")
    assert await worker.run_once() == 3
    assert sorted(sink.received.values()) == [1, 1, 1]
    # The dead worker wakes up and reports a failure: nothing changes.
    late = await flush(db, "dead", [LaneWrite(sink.authority, 0, 5, utcnow(), None, "cavage",
                                              release=True, failed=True)], [],
                       timedelta(seconds=10))
    assert late.written == set() and late.lost == {sink.authority}
    state = await lane(db, sink.authority)
    assert (state.cursor, state.attempts, state.state) == (await head(db), 0, "idle")
    assert state.last_failure_at is None


async def test_live_lease_is_not_taken(
        db: Database, sender: Sender, sinks: Callable[..., Awaitable[InboxSink]],
        workers: Callable[..., DeliveryWorker]) -> None:
    sink = await sinks()
    await sender.publish([sink.inbox(i) for i in range(3)])
    held, _ = await claim_lanes(db, "holder", 10, timedelta(minutes=10))
    assert len(held) == 1
    assert await workers().run_once() == 0
    assert len(sink.requests) == 0
    state = await lane(db, sink.authority)
    assert (state.state, state.worker_id) == ("sending", "holder")
    # The holder can still record its progress.
    done = await flush(db, "holder", [LaneWrite(sink.authority, await head(db), 0, utcnow(),
                                                None, "cavage", release=True)], [],
                       timedelta(seconds=10))
    assert done.written == {sink.authority}
    assert (await lane(db, sink.authority)).state == "idle"


async def test_slow_sends_keep_their_lease(
        db: Database, sender: Sender, sinks: Callable[..., Awaitable[InboxSink]],
        workers: Callable[..., DeliveryWorker]) -> None:
    """A lane whose sends take longer than the lease renews it: no one else takes it."""
    sink = await sinks(delay=2.0)
    await sender.publish([sink.inbox(i) for i in range(4)])
    worker = workers(lease=timedelta(seconds=0.9))
    task = asyncio.create_task(worker.run_once())

    async def in_flight() -> bool:
        return sink.in_flight == 4

    await wait_until(in_flight, what="four requests in flight")
    lease_ends = utcnow() + timedelta(seconds=0.9)
    cpu_before = time.process_time()
    stolen: list[LaneClaim] = []

    async def past_the_first_lease() -> bool:
        stolen.extend((await claim_lanes(db, "thief", 10, timedelta(minutes=1)))[0])
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
    await sender.publish([sink.inbox()])
    worker = workers()
    assert await worker.run_once() == 1
    assert sink.schemes == ["cavage", "rfc9421"]
    assert sink.problems == []
    state = await lane(db, sink.authority)
    assert state.signature_scheme == "rfc9421" and state.cursor == await head(db)
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
    assert (await lane(db, sink.authority)).signature_scheme == "rfc9421"


async def test_both_schemes_refused_is_retried(
        db: Database, sender: Sender, sinks: Callable[..., Awaitable[InboxSink]],
        workers: Callable[..., DeliveryWorker]) -> None:
    sink = await sinks(lambda scheme, nth: (401, {}))
    await sender.publish([sink.inbox()])
    assert await workers().run_once() == 0
    assert sink.schemes == ["cavage", "rfc9421"]  # one knock each, no more
    state = await lane(db, sink.authority)
    assert (state.attempts, state.last_status, state.signature_scheme) == (1, 401, "cavage")


async def test_refused_address_is_recorded_failed_not_retried(
        db: Database, sender: Sender, sinks: Callable[..., Awaitable[InboxSink]],
        workers: Callable[..., DeliveryWorker]) -> None:
    sink = await sinks()
    activity_id, _ = await sender.publish([sink.inbox()])
    async with GuardedClient(policy=public_address_policy, user_agent="test") as guarded:
        worker = workers(client=guarded)
        assert await worker.run_once() == 0
        assert await worker.run_once() == 0
    [row] = await failures(db)
    assert (row.activity_id, row.error, row.inbox_url) == (
        activity_id, "forbidden_address", sink.inbox())
    assert len(sink.requests) == 0
    state = await lane(db, sink.authority)
    assert (state.attempts, state.cursor) == (0, await head(db))
    [status] = await delivery_status_of(db, activity_id)
    assert status.state == "failed" and status.failures == (
        (sink.inbox(), None, "forbidden_address"),)


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
    await sender.publish([sink.inbox()])
    assert await workers().run_once() == 0
    [row] = await failures(db)
    assert row.error == "bad_key"
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


async def test_an_injected_idle_wait_wakes_the_worker(
        db: Database, sender: Sender, sinks: Callable[..., Awaitable[InboxSink]],
        workers: Callable[..., DeliveryWorker]) -> None:
    """Another process published: the cross-process wake-up plugged in as
    ``idle_wait`` returns, and the worker looks without waiting for its poll."""
    sink = await sinks()
    changed = asyncio.Event()
    waits: list[float] = []

    async def idle_wait(timeout: float) -> None:
        waits.append(timeout)
        await changed.wait()
        changed.clear()

    worker = workers(poll_seconds=600, idle_wait=idle_wait)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        async def idle() -> bool:
            return worker.idle

        await wait_until(idle, what="the worker waiting on an empty queue")
        await sender.publish([sink.inbox()])
        changed.set()  # no worker.wake(): only the injected wait tells it

        async def delivered() -> bool:
            return worker.sent == 1

        await wait_until(delivered, timeout=10, what="the delivery after the idle wait")
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)
    assert waits and waits[0] == 600


async def test_two_workers_send_every_inbox_exactly_once(
        db: Database, sender: Sender, sinks: Callable[..., Awaitable[InboxSink]],
        workers: Callable[..., DeliveryWorker]) -> None:
    hosts = [await sinks(delay=0.01) for _ in range(10)]
    inboxes = [sink.inbox(i) for sink in hosts for i in range(50)]
    # Each takes at most three lanes at a time: both have to take part.
    first = workers(batch=3, concurrency=3, worker_id="one")
    second = workers(batch=3, concurrency=3, worker_id="two")
    stop = asyncio.Event()
    tasks = [asyncio.create_task(w.run(stop)) for w in (first, second)]
    try:
        published = [await sender.publish(inboxes) for _ in range(2)]
        for worker in (first, second):
            worker.wake()

        async def all_sent() -> bool:
            return first.sent + second.sent == 1000

        await wait_until(all_sent, timeout=60, what="1000 deliveries")
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=20)
    received: Counter[tuple[str, str]] = Counter()
    for sink in hosts:
        assert sink.problems == []
        received.update({(f"{sink.authority}{path}", activity): n
                         for (activity, path), n in sink.received.items()})
    assert len(received) == 1000
    assert set(received.values()) == {1}  # every (activity, inbox) exactly once
    assert first.sent > 0 and second.sent > 0  # both took part
    assert first.lost_leases == second.lost_leases == 0
    assert {a for _, a in received} == {uri for _, uri in published}
    for sink in hosts:
        assert (await lane(db, sink.authority)).cursor == await head(db)


async def test_lanes_claimed_ahead_never_send_more_than_concurrency_at_once(
        sender: Sender, sinks: Callable[..., Awaitable[InboxSink]],
        workers: Callable[..., DeliveryWorker]) -> None:
    hosts = [await sinks(delay=0.05) for _ in range(12)]
    await sender.publish([sink.inbox(1) for sink in hosts])
    worker = workers(concurrency=3)
    peak = 0

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, sum(sink.in_flight for sink in hosts))
            await asyncio.sleep(0.005)  # a sampler of the sinks, not synchronisation

    sampler = asyncio.create_task(sample())
    try:
        assert await worker.run_once() == 12
    finally:
        sampler.cancel()
    assert 0 < peak <= 3
    assert all(sorted(sink.received.values()) == [1] for sink in hosts)


async def test_a_worker_woken_with_nothing_due_opens_no_write_transaction(
        db: Database, sender: Sender, sinks: Callable[..., Awaitable[InboxSink]],
        workers: Callable[..., DeliveryWorker], monkeypatch: pytest.MonkeyPatch) -> None:
    sink = await sinks()
    await sender.publish([sink.inbox(1)])
    worker = workers()
    assert await worker.run_once() == 1
    writes = 0
    write = db.write

    def counted() -> Any:
        nonlocal writes
        writes += 1
        return write()

    monkeypatch.setattr(db, "write", counted)
    worker.wake()  # as every local change (an inbox batch, say) wakes it
    assert await worker.run_once() == 0
    assert writes == 0
    # Something due again: claimed (a write transaction) and sent as before.
    await sender.publish([sink.inbox(2)])
    writes = 0
    assert await worker.run_once() == 1
    assert writes > 0
    assert sorted(sink.received.values()) == [1, 1]


# --- no head-of-line blocking ---------------------------------------------------------------------


async def test_a_hanging_host_does_not_delay_the_others(
        db: Database, sender: Sender, sinks: Callable[..., Awaitable[InboxSink]],
        workers: Callable[..., DeliveryWorker]) -> None:
    healthy = [await sinks() for _ in range(5)]
    async with RawServer(lambda server, request: None) as hang:  # accepts, never answers
        hang_host = f"127.0.0.1:{hang.port}"
        inboxes = [f"{hang.base}/inbox"] + [s.inbox(i) for s in healthy for i in range(3)]
        await sender.publish(inboxes)
        await sender.publish(inboxes)
        worker = workers(concurrency=2, batch=2, request_timeout=120)
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        try:
            async def healthy_done() -> bool:
                if sum(sum(s.received.values()) for s in healthy) < 30:
                    return False
                top = await head(db)
                return [(await lane(db, s.authority)).cursor for s in healthy] == [top] * 5

            await wait_until(healthy_done, timeout=30, what="every healthy delivery recorded")
            # Every healthy host got both posts while the hanging host still
            # holds its one request open, unanswered, and its lane in hand.
            assert len(hang.requests) == 1 and not hang.hung_up
            state = await lane(db, hang_host)
            assert (state.state, state.worker_id, state.attempts) == (
                "sending", worker.worker_id, 0)
            assert sorted(n for s in healthy for n in s.received.values()) == [1] * 30
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=20)
    # Stopping released the lane where it stood: its post goes again later.
    state = await lane(db, hang_host)
    assert (state.state, state.cursor) == ("idle", await head(db) - 2)


async def test_a_timeout_backs_off_the_lane_at_once(
        db: Database, sender: Sender, workers: Callable[..., DeliveryWorker]) -> None:
    async with RawServer(lambda server, request: None) as hang:
        await sender.publish([f"{hang.base}/inbox"])
        worker = workers(request_timeout=0.3)
        assert await worker.run_once() == 0
        state = await lane(db, f"127.0.0.1:{hang.port}")
        assert (state.attempts, state.last_error, state.consecutive_failures) == (
            1, "timeout", 1)
        assert state.next_attempt_at > utcnow()


async def test_activities_reach_one_inbox_in_publishing_order(
        db: Database, sender: Sender, workers: Callable[..., DeliveryWorker]) -> None:
    arrived: list[str] = []
    refused = {"first": True}

    def respond(server: RawServer, request: RawRequest) -> bytes:
        kind = json.loads(request.body)["type"]
        if refused["first"]:  # the Create fails once: nothing may overtake it
            refused["first"] = False
            return b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n"
        arrived.append(kind)
        return b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"

    async with RawServer(respond) as inbox:
        for kind in ("Create", "Update", "Delete"):
            await sender.publish([f"{inbox.base}/inbox"], activity_type=kind)
        worker = workers(fanouts_per_claim=2)
        assert await worker.run_once() == 0
        assert arrived == []
        await make_due(db, f"127.0.0.1:{inbox.port}")
        assert await worker.run_once() == 3
    assert arrived == ["Create", "Update", "Delete"]


# --- audiences ------------------------------------------------------------------------------------


async def test_followers_and_explicit_inboxes_share_one_post_per_inbox(
        db: Database, sender: Sender, sinks: Callable[..., Awaitable[InboxSink]],
        workers: Callable[..., DeliveryWorker]) -> None:
    one, two = await sinks(), await sinks()
    # Two followers on one host with a shared inbox on their own origin, one on another.
    await sender.follower(f"{one.base}/users/a", one.inbox("a"), one.inbox())
    await sender.follower(f"{one.base}/users/b", one.inbox("b"), one.inbox())
    await sender.follower(f"{two.base}/users/c", two.inbox("c"))
    await sender.follower(f"{two.base}/users/d", two.inbox("d"), state="pending")
    # A mention of c (already a follower) and of someone on a third host.
    third = await sinks()
    _, uri = await sender.publish([two.inbox("c"), third.inbox("e")], to_followers=True)
    assert await workers().run_once() == 3
    assert list(one.received) == [(uri, "/inbox/shared")]
    assert list(two.received) == [(uri, "/inbox/c")]  # once; the pending follower gets nothing
    assert list(third.received) == [(uri, "/inbox/e")]


async def test_at_most_fifty_inboxes_per_host(
        db: Database, sender: Sender, sinks: Callable[..., Awaitable[InboxSink]],
        workers: Callable[..., DeliveryWorker]) -> None:
    crowded = await sinks()
    for i in range(60):
        await sender.follower(f"{crowded.base}/users/{i}", crowded.inbox(f"u{i:02d}"))
    await sender.publish([], to_followers=True)
    assert await workers().run_once() == 50
    assert len(crowded.requests) == 50


async def test_a_follower_accepted_after_a_post_does_not_get_it(
        db: Database, sender: Sender, sinks: Callable[..., Awaitable[InboxSink]],
        workers: Callable[..., DeliveryWorker]) -> None:
    early, late = await sinks(), await sinks()
    await sender.follower(f"{early.base}/users/a", early.inbox("a"))
    _, before = await sender.publish([], to_followers=True)
    await sender.follower(f"{late.base}/users/b", late.inbox("b"))
    assert (await lane(db, late.authority)).cursor == await head(db)
    _, after = await sender.publish([], to_followers=True)
    assert await workers().run_once() == 3
    assert sorted(early.received) == sorted([(before, "/inbox/a"), (after, "/inbox/a")])
    assert list(late.received) == [(after, "/inbox/b")]


async def test_lanes_skip_fan_outs_that_have_nothing_for_their_host(
        db: Database, sender: Sender, sinks: Callable[..., Awaitable[InboxSink]],
        workers: Callable[..., DeliveryWorker]) -> None:
    """An Accept to one follower does not make every other lane claim and look."""
    quiet, busy = await sinks(), await sinks()
    await sender.follower(f"{quiet.base}/users/a", quiet.inbox("a"))
    await sender.publish([busy.inbox("x")])
    claims, mark = await claim_lanes(db, "w", 10, timedelta(seconds=10), fast=True)
    assert [c.host for c in claims] == [busy.authority]
    assert mark == await head(db)
    quiet_lane = await lane(db, quiet.authority)
    assert (quiet_lane.cursor, quiet_lane.state) == (await head(db), "idle")


async def test_delivery_status_per_host(
        db: Database, sender: Sender, sinks: Callable[..., Awaitable[InboxSink]],
        workers: Callable[..., DeliveryWorker]) -> None:
    ok = await sinks()
    gone = await sinks(lambda scheme, nth: (410, {}))
    busy = await sinks(lambda scheme, nth: (503, {}))
    await sender.follower(f"{ok.base}/users/a", ok.inbox("a"))
    activity_id, _ = await sender.publish([gone.inbox("g"), busy.inbox("b")], to_followers=True)
    before = {h.host: h.state for h in await delivery_status_of(db, activity_id)}
    assert before == {ok.authority: "waiting", gone.authority: "waiting",
                      busy.authority: "waiting"}
    await workers().run_once()
    status = {h.host: h for h in await delivery_status_of(db, activity_id)}
    assert status[ok.authority].state == "delivered"
    assert status[gone.authority].state == "failed"
    assert status[gone.authority].failures == ((gone.inbox("g"), 410, "http_410"),)
    assert status[busy.authority].state == "retrying"
    assert status[busy.authority].next_attempt_at is not None
    assert status[busy.authority].last_error == "http_503"
    async with db.read() as session:
        assert await delivery_status(session, 10_000) == []


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
        await sender.publish(inboxes)
        await workers(signing_threads=0).run_once()
        # Every inbox was reached once, and its signature verified the first
        # time against the request-target as it arrived.
        assert [(r.scheme, r.problem) for r in check.requests] == [(scheme, None)] * len(inboxes)
        # Encoded inbox URLs went byte for byte as published; the raw one escaped.
        assert sorted(r.target for r in check.requests) == sorted(
            "/users/%C3%A4/inbox" if path == "/users/ä/inbox" else path for path in WIRE_PATHS)
        assert await failures(db) == []
        assert (await lane(db, host)).cursor == await head(db)
